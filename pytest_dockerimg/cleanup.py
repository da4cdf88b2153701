"""Removal of what the plugin created: containers fast (kill, or a graceful stop only when asked),
then images (`rmi --no-prune`, so the layer cache survives), tags, volumes and networks.

`Tracker` removes what one scope (a test, a session) created; `remove_session` removes everything
labelled with a session id, for the end of an xdist run, the watcher and the stale sweep.
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
from docker.errors import APIError, NotFound

from .labels import ALL, Identity, Mark


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


def remove_containers(api: docker.APIClient, ids: Iterable[str], stop_timeout: float = 0.0) -> list[str]:
    """Remove several containers in parallel: each removal is a kill and a delete in the engine."""
    ids = list(ids)
    if len(ids) <= 1:
        return [problem for cid in ids for problem in remove_container(api, cid, stop_timeout)]
    with ThreadPoolExecutor(max_workers=min(8, len(ids))) as pool:
        results = pool.map(lambda cid: remove_container(api, cid, stop_timeout), ids)
        return [problem for problems in results for problem in problems]


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


def remove_network(api: docker.APIClient, network_id: str) -> list[str]:
    problems: list[str] = []
    with _noting(problems, f"remove network {network_id[:12]}"):
        api.remove_network(network_id)
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
    removed. (The classic builder commits one image per build label, so a build leaves a chain of
    labelled images: the final one and the label steps below it.)"""
    parents = {str(image["Id"]): str(image.get("ParentId") or "") for image in images}

    def depth(image_id: str) -> int:
        steps = 0
        while parents.get(image_id) in parents:
            image_id = parents[image_id]
            steps += 1
        return steps

    return sorted(parents, key=depth, reverse=True)


def remove_marked(api: docker.APIClient, doomed: Callable[[Mark], bool]) -> Removed:
    """Remove every container, image, volume and network whose plugin mark satisfies `doomed`.
    Resources without the mark are never touched."""

    def selected(labels: Mapping[str, str] | None) -> bool:
        mark = Mark.of(labels)
        return mark is not None and doomed(mark)

    removed = Removed()
    containers = [c["Id"] for c in api.containers(all=True, filters=ALL) if selected(c.get("Labels"))]
    removed.problems += remove_containers(api, containers)
    removed.containers = len(containers)
    found = {i["Id"]: i for i in api.images(all=True, filters=ALL) if selected(i.get("Labels"))}
    for image_id in children_first(found.values()):
        mark = Mark.of(found[image_id].get("Labels"))
        removed.problems += remove_image(api, image_id, prune=mark is not None and mark.prune)
    removed.images = len(found)
    for volume in api.volumes(filters=ALL).get("Volumes") or []:
        if selected(volume.get("Labels")):
            removed.problems += remove_volume(api, volume["Name"])
            removed.volumes += 1
    for network in api.networks(filters=ALL):
        if selected(network.get("Labels")):
            removed.problems += remove_network(api, network["Id"])
            removed.networks += 1
    return removed


def remove_session(api: docker.APIClient, identity: Identity) -> Removed:
    """Remove what this session created, except what it kept on purpose."""
    return remove_marked(
        api, lambda mark: mark.session == identity.session and mark.host == identity.host and not mark.keep
    )


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

    def submit(self, container_ids: Iterable[str], stop_timeout: float = 0.0) -> None:
        with self._lock:
            self._pending += [
                self._pool.submit(remove_container, self.api, cid, stop_timeout) for cid in container_ids
            ]

    def wait(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            self.problems += future.result()

    def close(self) -> list[str]:
        """Wait for every removal, stop the threads, and return the problems met."""
        self.wait()
        self._pool.shutdown()
        return self.problems


@dataclass
class Tracker:
    """What one scope (a test, or the session) created, removed in dependency order by `close`.
    With a `reaper`, containers are removed in the background."""

    api: docker.APIClient
    stop_timeout: float = 0.0
    reaper: Reaper | None = None
    containers: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def close(self, *, keep_containers: bool = False) -> list[str]:
        """Remove everything tracked (containers only when not kept); return the problems met."""
        problems: list[str] = []
        if keep_containers:
            pass
        elif self.reaper is not None and not self.volumes:
            self.reaper.submit(reversed(self.containers), self.stop_timeout)
        else:
            problems += remove_containers(self.api, reversed(self.containers), self.stop_timeout)
        self.containers.clear()
        for ref in reversed(self.tags):
            problems += remove_tag(self.api, ref)
        self.tags.clear()
        if not keep_containers:
            for name in self.volumes:
                problems += remove_volume(self.api, name)
            self.volumes.clear()
        return problems
