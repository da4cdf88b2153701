"""Removal of what the plugin created: containers fast (kill, or a graceful stop only when asked),
then tags, images (`rmi --no-prune`, so the layer cache survives) and volumes.

`Tracker` removes what one scope (a test, the session) created, in the foreground or through the
`Reaper` in the background; `remove_marked` removes what a session's mark covers, for the end of
the session, the watcher and the stale sweep. Nothing without the plugin's mark is touched, nor
anything that only inherited the mark from one of the plugin's images.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import docker
from docker.errors import APIError, ImageNotFound, NotFound

from .labels import ALL, LABEL, Identity, Mark
from .state import kept_containers, session_images


@contextmanager
def _noting(problems: list[str], what: str) -> Iterator[None]:
    """Run a removal; a resource already gone is fine, any other refusal is noted, not raised."""
    try:
        yield
    except NotFound:
        pass
    except APIError as error:
        if not (error.status_code == 409 and "already in progress" in str(error)):
            problems.append(f"{what}: {error.explanation or error}")


def remove_container(api: docker.APIClient, container_id: str, stop_timeout: float = 0.0) -> list[str]:
    """Remove a container and its anonymous volumes; kill it at once unless `stop_timeout` > 0."""
    problems: list[str] = []
    if stop_timeout > 0:
        with _noting(problems, f"stop container {container_id[:12]}"):
            api.stop(container_id, timeout=math.ceil(stop_timeout))
    with _noting(problems, f"remove container {container_id[:12]}"):
        api.remove_container(container_id, v=True, force=True)
    return problems


def remove_image(api: docker.APIClient, image: str, *, prune: bool = False) -> list[str]:
    """`docker rmi --force --no-prune`: drops the image and its tags, keeps its parent layers
    (the build cache) so the next build of the same Dockerfile still hits the cache. With
    `prune`, the parent layers that nothing else uses go too."""
    problems: list[str] = []
    with _noting(problems, f"remove image {image}"):
        api.remove_image(image, force=True, noprune=not prune)
    return problems


def remove_tag(api: docker.APIClient, ref: str) -> list[str]:
    """Untag `ref`; the image itself goes only when this was its last reference."""
    problems: list[str] = []
    with _noting(problems, f"remove tag {ref}"):
        api.remove_image(ref, noprune=True)
    return problems


def remove_volume(api: docker.APIClient, name: str) -> list[str]:
    problems: list[str] = []
    with _noting(problems, f"remove volume {name}"):
        api.remove_volume(name, force=True)
    return problems


@dataclass
class Removed:
    containers: int = 0
    images: int = 0
    volumes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.containers + self.images + self.volumes


def children_first(images: Iterable[Mapping[str, Any]]) -> list[str]:
    """Image ids ordered so that each comes before its parent: an image with children cannot be
    removed. (The classic builder commits one image per build label, so a build with labels of
    its own leaves a chain of labelled images: the final one and the label steps below it.)"""
    parents = {str(image["Id"]): str(image.get("ParentId") or "") for image in images}

    def depth(image_id: str) -> int:
        steps = 0
        while parents.get(image_id) in parents:
            image_id = parents[image_id]
            steps += 1
        return steps

    return sorted(parents, key=depth, reverse=True)


def made_by_plugin(api: docker.APIClient, image: Mapping[str, Any], mark: Mark) -> bool:
    """Whether the plugin made this image itself, rather than someone building FROM, or
    committing a container of, one of its images (which copies the mark). A built image's top
    layers are the build's LABEL steps, one of them setting the mark; a commit names its source
    container."""
    if mark.kind == "commit":
        details = api.inspect_image(image["Id"])  # type: ignore[no-untyped-call]
        return bool(mark.source) and str(details.get("Container", "")).startswith(mark.source)
    if mark.kind != "image":
        return False
    for row in api.history(image["Id"]):  # type: ignore[no-untyped-call]
        created_by = str(row.get("CreatedBy") or "")
        if "#(nop)" not in created_by or " LABEL " not in f" {created_by} ":
            return False
        if f"{LABEL}={mark.value()}" in created_by.replace('"', ""):
            return True
    return False


def remove_marked(api: docker.APIClient, doomed: Callable[[Mark], bool]) -> Removed:
    """Remove the containers, images and volumes whose plugin mark satisfies `doomed`, that
    the plugin made itself. Containers kept on purpose stay, and so do the images they use."""
    removed = Removed()

    def marked(
        resources: Iterable[Mapping[str, Any]], kinds: tuple[str, ...]
    ) -> list[tuple[Mapping[str, Any], Mark]]:
        found = []
        for resource in resources:
            mark = Mark.of(resource.get("Labels"))
            if mark is not None and mark.kind in kinds and doomed(mark):
                found.append((resource, mark))
        return found

    containers = api.containers(all=True)
    spared = kept_containers(existing={c["Id"] for c in containers})
    for container, _ in marked(containers, ("container",)):
        if container["Id"] in spared:
            continue
        problems = remove_container(api, container["Id"])
        removed.problems += problems
        removed.containers += not problems
    remaining = api.containers(all=True)
    in_use = {c["ImageID"] for c in remaining}
    images = {
        image["Id"]: (image, mark)
        for image, mark in marked(api.images(all=True, filters=ALL), ("image", "commit"))
        if image["Id"] not in in_use and made_by_plugin(api, image, mark)
    }
    for image_id in children_first(image for image, _ in images.values()):
        problems = remove_image(api, image_id, prune=images[image_id][1].prune)
        removed.problems += problems
        removed.images += not problems
    mounted = {mount.get("Name") for container in remaining for mount in container.get("Mounts") or []}
    for volume, _ in marked(api.volumes(filters=ALL).get("Volumes") or [], ("volume",)):
        if volume["Name"] in mounted:
            continue
        problems = remove_volume(api, volume["Name"])
        removed.problems += problems
        removed.volumes += not problems
    return removed


def remove_session(api: docker.APIClient, identity: Identity) -> Removed:
    """Remove what this session created, except what it kept on purpose."""
    return remove_marked(api, lambda mark: identity.made(mark) and not mark.keep)


class Reaper:
    """Removes containers in the background. Killing a container costs the engine about 0.1 s
    (stopping its network and port proxies), which the next test need not wait for. `wait`
    blocks until everything submitted is gone: before a fixed host port or container name is
    used again, and at the end of the session."""

    def __init__(self, api: docker.APIClient, workers: int = 4) -> None:
        self.api = api
        self.problems: list[str] = []
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dockerimg-reaper")
        self._pending: list[Future[list[str]]] = []
        self._lock = threading.Lock()
        self._closed = False

    def _remove(self, container_ids: list[str], tags: list[str], stop_timeout: float) -> list[str]:
        problems = [
            problem for cid in container_ids for problem in remove_container(self.api, cid, stop_timeout)
        ]
        # Only now: a tag's image cannot go while a container of it exists.
        return problems + [problem for ref in tags for problem in remove_tag(self.api, ref)]

    def submit(
        self, container_ids: Iterable[str], tags: Iterable[str] = (), stop_timeout: float = 0.0
    ) -> None:
        """Remove the containers, then the tags; at once when the reaper is already closed."""
        work = (list(container_ids), list(tags), stop_timeout)
        with self._lock:
            if not self._closed:
                self._pending.append(self._pool.submit(self._remove, *work))
                return
        self.problems += self._remove(*work)

    def wait(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            self.problems += future.result()

    def close(self) -> list[str]:
        """Wait for every removal, stop the threads, and return the problems met."""
        self.wait()
        with self._lock:
            self._closed = True
        self._pool.shutdown()
        return self.problems


@dataclass
class Tracker:
    """What one scope (a test, or the session) created, removed in dependency order by `close`:
    containers, then tags, then volumes. With a `reaper`, in the background."""

    api: docker.APIClient
    stop_timeout: float = 0.0
    reaper: Reaper | None = None
    containers: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def close(self, *, keep_containers: bool = False) -> list[str]:
        """Remove everything tracked (containers and their volumes only when not kept); return
        the problems met."""
        containers = [] if keep_containers else list(reversed(self.containers))
        tags = list(reversed(self.tags))
        volumes = [] if keep_containers else list(self.volumes)
        self.containers.clear()
        self.tags.clear()
        self.volumes.clear()
        if self.reaper is not None and not volumes:
            self.reaper.submit(containers, tags, self.stop_timeout)
            return []
        problems = [
            problem for cid in containers for problem in remove_container(self.api, cid, self.stop_timeout)
        ]
        problems += [problem for ref in tags for problem in remove_tag(self.api, ref)]
        return problems + [problem for name in volumes for problem in remove_volume(self.api, name)]


def remove_built_images(api: docker.APIClient, session: str) -> list[str]:
    """Remove the images that the session's builds made (built images carry no mark; the builds
    record them in the session's state until the session ledger does): untag what a build tagged,
    then remove the image unless something else still holds it (a tag of yours, since the same
    inputs give the same image; a container; an image built on it)."""
    problems = []
    for image_id, tag, prune in reversed(session_images(session)):
        try:
            if tag and str(api.inspect_image(tag)["Id"]) == image_id:  # type: ignore[no-untyped-call]
                api.remove_image(tag, noprune=not prune)  # the image too, when no other tag holds it
            api.remove_image(image_id, noprune=not prune)
        except ImageNotFound:
            continue
        except APIError as error:
            if error.status_code != 409:  # 409: still in use or tagged by someone else: it stays
                problems.append(f"remove image {image_id[:19]}: {error.explanation or error}")
    return problems
