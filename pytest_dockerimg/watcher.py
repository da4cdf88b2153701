"""Leak protection when a session dies without its teardown (SIGKILL, a crash, an OOM kill).

A process that uses the engine starts one watcher per session owner: a tiny detached process
(its own session, so Ctrl-C or a process-group kill does not reach it) that polls whether the
owner process is alive and, once it is gone, tears down what the ledgers of that owner's
sessions list (tags given back included), then removes the labelled containers, networks and
volumes of that owner that no ledger named. No sidecar image is needed (a Ryuk-style reaper
needs a pull). After a clean end there is nothing left for it to find.

As a second line, `sweep_stale` does the same at the next start for every session of this
machine whose owner is gone (the watcher can be killed too, e.g. with a whole cgroup), and for
every session that ran in a container of this engine that no longer runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import docker
import requests
from docker.errors import DockerException, NotFound

from .cleanup import Removed, sweep_labels, teardown
from .contexts import resolve_endpoint
from .engine import client_for
from .labels import Identity, Mark, container_key, process_alive
from .ledger import Ledger
from .state import Owner, sessions

POLL_SECONDS = 0.2

# The watcher waits with nothing but `os` and `time` loaded, so that many of them (one per
# owner, e.g. under pytester) stay small; docker-py is imported only when there is work.
_WATCH = f"""
import os, sys, time
owner, started, host = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
while alive(owner):
    time.sleep({POLL_SECONDS})
from pytest_dockerimg.watcher import sweep_owner
sweep_owner(owner, started, host)
"""

_started: set[Identity] = set()


def start_watcher(identity: Identity, engine_address: str, context: str | None = None) -> int | None:
    """Start the watcher of `identity.owner` unless this process already did; its pid or None.
    It talks to the engine at `engine_address`, through the Docker `context` it came from when
    there is one (whose TLS material DOCKER_HOST alone would not carry)."""
    key = Identity("", identity.host, identity.owner, identity.started)
    if key in _started or not hasattr(os, "posix_spawn"):
        return None
    _started.add(key)
    # posix_spawn rather than subprocess.Popen: nothing here waits for the watcher, and a
    # never-waited Popen object warns when it is garbage collected.
    return os.posix_spawn(
        sys.executable,
        [sys.executable, "-c", _WATCH, str(identity.owner), str(identity.started), identity.host],
        _watcher_environment(engine_address, context),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
        ],
        setsid=True,
    )


def _watcher_environment(engine_address: str, context: str | None) -> dict[str, str]:
    environment = dict(os.environ)
    if context is None:
        environment["DOCKER_HOST"] = engine_address
    else:
        environment.pop("DOCKER_HOST", None)
        environment["DOCKER_CONTEXT"] = context
    return environment


def _tear_down_sessions(api: docker.APIClient, engine: str, dead: Callable[[Owner], bool]) -> Removed:
    """Tear down, from their ledgers, the sessions on `engine` whose owner `dead` says is gone,
    and forget them. (A ledger of another engine names ids and tags of that engine.)"""
    removed = Removed()
    for files, owner in sessions():
        if owner is None or (owner.engine and owner.engine != engine) or not dead(owner):
            continue
        removed += teardown(api, [Ledger.load(path) for path in files.ledger_paths()])
        files.remove()
    return removed


def sweep_owner(owner: int, started: int, host: str) -> Removed:
    """Remove what the sessions owned by the (dead) process `owner` on `host` left behind."""
    endpoint = resolve_endpoint(os.environ)
    client, _ = client_for(endpoint, os.environ, timeout=30)
    try:
        engine = endpoint.address
        removed = _tear_down_sessions(
            client.api, engine, lambda o: (o.pid, o.started, o.host) == (owner, started, host)
        )
        removed += sweep_labels(
            client.api,
            lambda mark: (
                mark.owner == owner and mark.started == started and mark.host == host and not mark.kept
            ),
        )
        return removed
    finally:
        client.close()


def container_gone(api: docker.APIClient, key: str) -> bool:
    """Whether the container `key` (see `container_key`) no longer runs as it did: removed,
    stopped or restarted since. Where the engine does not say, it is not gone."""
    try:
        attrs = api.inspect_container(key.partition(".")[0])
    except NotFound:
        return True
    except (DockerException, requests.RequestException):
        return False
    return not (attrs.get("State") or {}).get("Running") or container_key(attrs) != key


def _dead(owner: int, started: int) -> bool:
    return not process_alive(owner, started)


def sweep_stale(api: docker.APIClient, identity: Identity, engine: str) -> Removed:
    """Remove what sessions left behind when their owner process is gone: this user's on this
    machine from their ledgers; anyone's labelled containers, networks and volumes that were not
    kept on purpose, made on this machine or in a container of this engine that no longer runs
    (a killed CI job container takes its watcher and its ledger with it)."""
    removed = _tear_down_sessions(
        api, engine, lambda owner: owner.host == identity.host and _dead(owner.pid, owner.started)
    )

    gone: dict[str, bool] = {}

    def stale(mark: Mark) -> bool:
        if mark.kept or identity.made(mark):
            return False
        if mark.host == identity.host:
            return _dead(mark.owner, mark.started)
        if mark.container:  # another machine: a container of this engine, which says whether it runs
            if mark.container not in gone:
                gone[mark.container] = container_gone(api, mark.container)
            return gone[mark.container]
        return False

    removed += sweep_labels(api, stale)
    return removed


_reaping = threading.Event()


def start_reaping_as_init() -> None:
    """With pytest as PID 1 (a container started without `--init`), orphans are reparented to
    this process and nothing reaps them: a watcher whose session ended (a pytest run in a
    subprocess) would stay a zombie until the container stops. Reap those, and only those:
    zombies that lead a session of their own (the watcher calls setsid), so that the exit status
    of a child that subprocess.Popen waits for is never taken from it."""
    if os.getpid() != 1 or _reaping.is_set():
        return
    _reaping.set()

    def reap() -> None:
        while True:
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    fields = Path(entry.path, "stat").read_text().rpartition(")")[2].split()
                except OSError:
                    continue
                state, parent, session = fields[0], int(fields[1]), int(fields[3])
                if state == "Z" and parent == 1 and session == int(entry.name):
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(int(entry.name), os.WNOHANG)
            time.sleep(1.0)

    threading.Thread(target=reap, name="dockerimg-reap-orphans", daemon=True).start()
