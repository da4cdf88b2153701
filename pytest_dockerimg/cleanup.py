"""Removal of what the plugin created: containers fast (kill, or a graceful stop only when asked),
then networks, tags, images (`rmi --no-prune`, so the layer cache survives) and volumes.

`Tracker` removes what one scope (a test, the session) created, in the foreground or through the
`Reaper` in the background; `remove_marked` removes what a session's mark covers, for the end of
the session, the watcher and the stale sweep. Nothing without the plugin's mark is touched, nor
anything that only inherited the mark from one of the plugin's images.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as all_done
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import docker
from docker.errors import APIError, NotFound

from .labels import ALL, LABEL, Identity, Mark
from .state import kept_containers


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


def remove_network(api: docker.APIClient, network_id: str, settle: float = 10.0) -> list[str]:
    """Remove a network. Containers still on it (which the engine would refuse with "has active
    endpoints") are disconnected first: another scope's, whose network ends with this scope,
    or ones being removed right now (then the endpoint goes within `settle` seconds)."""
    problems: list[str] = []
    deadline = time.monotonic() + settle
    with _noting(problems, f"remove network {network_id[:12]}"):
        while True:
            try:
                api.remove_network(network_id)
                break
            except APIError as error:
                if "active endpoints" not in str(error) or time.monotonic() > deadline:
                    raise
            for container_id in api.inspect_network(network_id).get("Containers") or {}:
                try:
                    api.disconnect_container_from_network(container_id, network_id, force=True)
                except APIError:
                    time.sleep(0.05)  # e.g. "marked for removal": its endpoint goes with it
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
    networks: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.containers + self.images + self.volumes + self.networks


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
    """Remove the containers, networks, images and volumes whose plugin mark satisfies `doomed`,
    that the plugin made itself. Containers kept on purpose stay, and so do the networks, images
    and volumes they use."""
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
    attached = {
        network.get("NetworkID")
        for container in remaining
        for network in ((container.get("NetworkSettings") or {}).get("Networks") or {}).values()
    }
    for network, _ in marked(api.networks(filters=ALL), ("network",)):
        if network["Id"] in attached:
            continue
        problems = remove_network(api, network["Id"])
        removed.problems += problems
        removed.networks += not problems
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

    def _remove(
        self,
        container_ids: list[str],
        tags: list[str],
        stop_timeout: float,
        networks: list[str],
        earlier: list[Future[list[str]]],
    ) -> list[str]:
        problems = [
            problem for cid in container_ids for problem in remove_container(self.api, cid, stop_timeout)
        ]
        # Only now: a tag's image cannot go while a container of it exists.
        problems += [problem for ref in tags for problem in remove_tag(self.api, ref)]
        if networks:
            # Containers of earlier scopes may be on these networks too (a module's network
            # outlives its tests' containers): their removals were submitted first.
            all_done(earlier)
        return problems + [problem for nid in networks for problem in remove_network(self.api, nid)]

    def submit(
        self,
        container_ids: Iterable[str],
        tags: Iterable[str] = (),
        stop_timeout: float = 0.0,
        networks: Iterable[str] = (),
    ) -> None:
        """Remove the containers, then the tags, then (once every earlier submission is done) the
        networks; at once when the reaper is already closed."""
        with self._lock:
            work = (list(container_ids), list(tags), stop_timeout, list(networks), list(self._pending))
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
    """What one scope (a test, a class, a module, the session) created, removed in dependency
    order by `close`: containers, then tags, then networks, then volumes. With a `reaper`, in the
    background (unless `background` is False: the reaper's earlier removals are then waited for
    before networks go)."""

    api: docker.APIClient
    stop_timeout: float = 0.0
    reaper: Reaper | None = None
    background: bool = True
    containers: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def close(self, *, keep_containers: bool = False) -> list[str]:
        """Remove everything tracked (containers, their networks and volumes only when not
        kept); return the problems met."""
        containers = [] if keep_containers else list(reversed(self.containers))
        tags = list(reversed(self.tags))
        networks = [] if keep_containers else list(reversed(self.networks))
        volumes = [] if keep_containers else list(self.volumes)
        self.containers.clear()
        self.tags.clear()
        self.networks.clear()
        self.volumes.clear()
        if self.reaper is not None and self.background and not volumes:
            self.reaper.submit(containers, tags, self.stop_timeout, networks)
            return []
        if self.reaper is not None:
            self.reaper.wait()  # what earlier scopes left to it may be on this scope's networks
        problems = [
            problem for cid in containers for problem in remove_container(self.api, cid, self.stop_timeout)
        ]
        problems += [problem for ref in tags for problem in remove_tag(self.api, ref)]
        problems += [problem for nid in networks for problem in remove_network(self.api, nid)]
        return problems + [problem for name in volumes for problem in remove_volume(self.api, name)]
