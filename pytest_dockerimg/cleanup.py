"""Removal of what the plugin created, from the session ledger: `teardown` walks the entries in
a fixed order (containers, networks, images, volumes, then tags given back) and every step runs
even when an earlier one failed; the `Reaper` does a test's share in the background; and
`sweep_labels` removes the labelled containers, networks and volumes of dead sessions.

Containers go fast (kill, or a graceful stop only when asked). Images go with `rmi --no-prune`,
so the layer cache survives. Nothing the ledger or the label does not name is touched.
"""

from __future__ import annotations

import contextlib
import io
import math
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import docker
import requests
from docker.errors import APIError, DockerException, NotFound
from docker.utils import parse_repository_tag

from .engine import is_podman
from .labels import ALL, Mark
from .ledger import TEARDOWN_ORDER, Entry, Kind, Ledger
from .tags import image_of, image_tags, others_tags, session_tags, untag

SCOPE_KINDS: tuple[Kind, ...] = ("container", "network", "volume")


@contextmanager
def _noting(problems: list[str], what: str) -> Iterator[None]:
    """Run one removal: a resource already gone is fine; any other failure (a refusal, a dead or
    frozen engine) is noted and teardown goes on."""
    try:
        yield
    except NotFound:
        pass
    except APIError as error:
        text = str(error.explanation or error)
        if not (error.status_code == 409 and "already in progress" in text):
            problems.append(f"{what}: {text}")
    except (DockerException, requests.RequestException, OSError) as error:
        problems.append(f"{what}: {type(error).__name__}: {error}")


def remove_container(api: docker.APIClient, container_id: str, stop_timeout: float = 0.0) -> list[str]:
    """Remove a container and its anonymous volumes; kill it at once unless `stop_timeout` > 0."""
    problems: list[str] = []
    if stop_timeout > 0:
        with _noting(problems, f"stop container {container_id[:12]}"):
            api.stop(container_id, timeout=math.ceil(stop_timeout))
    elif is_podman(api):
        # podman's forced removal stops the container first, with its 10 s stop timeout.
        with _noting(problems, f"kill container {container_id[:12]}"), contextlib.suppress(APIError):
            api.kill(container_id)  # an APIError (not running, gone): the removal says what matters
        if problems:
            return problems  # the engine does not answer
    with _noting(problems, f"remove container {container_id[:12]}"):
        api.remove_container(container_id, v=True, force=True)
    return problems


def remove_network(api: docker.APIClient, network_id: str, settle: float = 10.0) -> list[str]:
    """Remove a network. Containers still on it (which the engine would refuse with "has active
    endpoints") are disconnected first: another scope's, whose network ends with this scope,
    or ones being removed right now (then the endpoint goes within `settle` seconds)."""
    problems: list[str] = []
    deadline = time.monotonic() + settle

    def disconnect_all() -> None:
        for container_id in api.inspect_network(network_id).get("Containers") or {}:
            try:
                api.disconnect_container_from_network(container_id, network_id, force=True)
            except APIError:
                time.sleep(0.05)  # e.g. "marked for removal": its endpoint goes with it

    with _noting(problems, f"remove network {network_id[:12]}"):
        if is_podman(api):
            # podman removes a network that containers are on, and then fails to remove them
            # ("failed to convert net opts: ... network not found").
            disconnect_all()
        while True:
            try:
                api.remove_network(network_id)
                break
            except APIError as error:
                if "active endpoints" not in str(error) or time.monotonic() > deadline:
                    raise
            disconnect_all()
    return problems


def remove_volume(api: docker.APIClient, name: str) -> list[str]:
    problems: list[str] = []
    with _noting(problems, f"remove volume {name}"):
        api.remove_volume(name, force=True)
    return problems


def remove_image(
    api: docker.APIClient, image_id: str, *, prune: bool = False, own_tags: Collection[str] | None = None
) -> list[str]:
    """`docker rmi --force --no-prune`: the image and its tags go, its parent layers (the build
    cache) stay unless `prune`. An image that someone built on or committed from since (it has
    children now) stays as their base: not a problem, its tags are given back after. With
    `own_tags` (the tags the session put on images), an image that also carries a tag of
    someone else's (they tagged it since) stays theirs."""
    problems: list[str] = []
    with _noting(problems, f"remove image {image_id[:19]}"):
        if own_tags is not None and others_tags(image_tags(api, image_id), own_tags):
            return problems
        try:
            api.remove_image(image_id, force=True, noprune=not prune)
        except APIError as error:
            if error.status_code != 409 or "dependent child images" not in str(error.explanation):
                raise
    return problems


HOLDS = "pytest-dockerimg.holds"
CACHE_OF = "pytest-dockerimg.cache-of"


def hold_image(api: docker.APIClient, image_id: str, cache_of: str) -> list[str]:
    """Keep a built image as the build cache, hidden, once its tags are gone. With the classic
    builder the cache is the chain of images itself: removing the image would make the next
    session run its last step again and give a new id. An untagged image with a child stays
    (and `docker images` does not list it), so a one-line child (`FROM image` + a label) holds
    it; that child shows as one `<none>` entry. One image is held per build spec (`cache_of`,
    its key): the holder of the spec's earlier image goes, and with it the layers of that image
    that nothing else uses, so that editing a Dockerfile does not pile up `<none>` entries."""
    problems: list[str] = []
    if is_podman(api):
        return problems  # podman keeps an untagged image (see `untag`): nothing to hold it
    with _noting(problems, f"keep image {image_id[:19]} as build cache"):
        if not api.images(all=True, quiet=True, filters={"label": f"{HOLDS}={image_id}"}):
            dockerfile = f"FROM {image_id}\nLABEL {HOLDS}={image_id} {CACHE_OF}={cache_of}\n".encode()
            for _ in api.build(fileobj=io.BytesIO(dockerfile), rm=True, forcerm=True, decode=True):
                pass
    with _noting(problems, f"let go of the build cache {image_id[:19]} replaces"):
        for holder in api.images(filters={"label": f"{CACHE_OF}={cache_of}"}):
            if (holder.get("Labels") or {}).get(HOLDS) != image_id:
                # No force: pruning stops at a layer that is tagged, used or built on.
                api.remove_image(holder["Id"])
    return problems


def give_back_tag(api: docker.APIClient, entry: Entry) -> list[str]:
    """The session moved the tag `entry.ref` onto `entry.image`: point it at `entry.previous`
    again, or untag it when it named nothing before. A tag moved since by someone else stays."""
    problems: list[str] = []
    with _noting(problems, f"give the tag {entry.ref} back"):
        current = image_of(api, entry.ref)
        if current is not None and entry.previous == current:
            return problems
        if current is not None and entry.image and current != entry.image:
            return problems  # another session or the user has moved it since
        if entry.previous and image_of(api, entry.previous) is not None:
            repository, tag = parse_repository_tag(entry.ref)
            api.tag(entry.previous, repository, tag or "latest", force=True)
        elif current is not None:
            untag(api, entry.ref)
    return problems


@dataclass
class Removed:
    """What a teardown or sweep removed, and the problems it met."""

    containers: int = 0
    networks: int = 0
    images: int = 0
    volumes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.containers + self.networks + self.images + self.volumes

    def add(self, kind: Kind, problems: list[str]) -> None:
        self.problems += problems
        if not problems and kind != "tag":
            setattr(self, f"{kind}s", getattr(self, f"{kind}s") + 1)

    def __iadd__(self, other: Removed) -> Removed:
        for kind in ("container", "network", "image", "volume"):
            setattr(self, f"{kind}s", getattr(self, f"{kind}s") + getattr(other, f"{kind}s"))
        self.problems += other.problems
        return self


def remove_entry(
    api: docker.APIClient, entry: Entry, stop_timeout: float = 0.0, own_tags: Collection[str] | None = None
) -> list[str]:
    if entry.kind == "container":
        return remove_container(api, entry.ref, stop_timeout)
    if entry.kind == "network":
        return remove_network(api, entry.ref)
    if entry.kind == "volume":
        return remove_volume(api, entry.ref)
    if entry.kind == "image":
        if entry.hold:
            return hold_image(api, entry.ref, entry.hold)
        return remove_image(api, entry.ref, prune=entry.prune, own_tags=own_tags)
    return give_back_tag(api, entry)


def teardown(
    api: docker.APIClient,
    ledgers: Iterable[Ledger],
    *,
    kinds: Iterable[Kind] = TEARDOWN_ORDER,
    scope: str | None = None,
    stop_timeout: float = 0.0,
) -> Removed:
    """Remove what the ledgers list (of `kinds`, in `scope`), in teardown order, except what is
    kept. Each removal runs whatever happened to the ones before it."""
    removed = Removed()
    ledgers = list(ledgers)
    wanted = set(kinds)
    own_tags = session_tags(ledgers)
    for kind in TEARDOWN_ORDER:
        if kind not in wanted:
            continue
        for ledger in ledgers:
            for entry in ledger.live([kind], scope):
                if entry.keep_now:
                    continue
                problems = remove_entry(api, entry, stop_timeout, own_tags)
                removed.add(kind, problems)
                if not problems:
                    ledger.mark_gone(entry)
    return removed


def sweep_labels(api: docker.APIClient, doomed: Callable[[Mark], bool]) -> Removed:
    """Remove the containers, networks and volumes whose plugin label satisfies `doomed`."""
    removed = Removed()

    def marked(resources: Iterable[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
        found = []
        for resource in resources:
            mark = Mark.of(resource.get("Labels"))
            if mark is not None and mark.kind == kind and doomed(mark):
                found.append(resource)
        return found

    with _noting(removed.problems, "list containers"):
        for container in marked(api.containers(all=True, filters=ALL), "container"):
            removed.add("container", remove_container(api, container["Id"]))
    with _noting(removed.problems, "list networks"):
        for network in marked(api.networks(filters=ALL), "network"):
            removed.add("network", remove_network(api, network["Id"]))
    with _noting(removed.problems, "list volumes"):
        for volume in marked(api.volumes(filters=ALL).get("Volumes") or [], "volume"):
            removed.add("volume", remove_volume(api, volume["Name"]))
    return removed


class Reaper:
    """Removes a test's containers (then its networks and volumes) in the background. Killing
    a container costs the engine about 0.1 s (stopping its network and port proxies), which the
    next test need not wait for. `wait` blocks until everything submitted is gone: before a
    fixed host port, a container name or a network is used again, and at the end."""

    def __init__(self, api: docker.APIClient, workers: int = 4) -> None:
        self.api = api
        self.problems: list[str] = []
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dockerimg-reaper")
        self._pending: list[Future[Removed]] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, ledger: Ledger, scope: str, stop_timeout: float = 0.0) -> None:
        """Tear down `scope`'s containers, networks and volumes; at once when already closed."""
        work = (self.api, [ledger])
        options: dict[str, Any] = {"kinds": SCOPE_KINDS, "scope": scope, "stop_timeout": stop_timeout}
        with self._lock:
            if not self._closed:
                self._pending.append(self._pool.submit(teardown, *work, **options))
                return
        self.problems += teardown(*work, **options).problems

    def wait(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            self.problems += future.result().problems

    def close(self) -> list[str]:
        """Wait for every removal, stop the threads, and return the problems met."""
        self.wait()
        with self._lock:
            self._closed = True
        self._pool.shutdown()
        return self.problems
