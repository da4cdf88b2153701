"""Leak protection when a session dies without its teardown (SIGKILL, a crash, an OOM kill).

A process that connects to the engine starts one watcher per session owner: a tiny detached
process (its own session, so Ctrl-C or a process-group kill does not reach it) that polls whether
the owner process is alive and, once it is gone, removes everything marked with that owner on
this host, kept resources excepted. No sidecar image is needed (a Ryuk-style reaper needs a
pull). After a clean end there is nothing left for it to find.

As a second line, `sweep_stale` removes at the next start what sessions from this host left
behind when their owner is gone (the watcher can be killed too, e.g. with a whole cgroup).
"""

from __future__ import annotations

import os
import sys

import docker

from .cleanup import Removed, remove_built_images, remove_marked
from .labels import Identity

POLL_SECONDS = 0.2

# The watcher waits with nothing but `os` and `time` loaded, so that many of them (one per
# owner, e.g. under pytester) stay small; docker-py is imported only when there is work.
_WATCH = f"""
import os, sys, time
owner, started, host, session = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
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
sweep_owner(owner, started, host, session)
"""

_started: set[Identity] = set()


def start_watcher(identity: Identity) -> int | None:
    """Start the watcher of `identity.owner` unless this process already did; its pid or None."""
    key = Identity("", identity.host, identity.owner, identity.started)
    if key in _started or not hasattr(os, "posix_spawn"):
        return None
    _started.add(key)
    # posix_spawn rather than subprocess.Popen: nothing here waits for the watcher, and a
    # never-waited Popen object warns when it is garbage collected.
    return os.posix_spawn(
        sys.executable,
        [
            sys.executable,
            "-c",
            _WATCH,
            str(identity.owner),
            str(identity.started),
            identity.host,
            identity.session,
        ],
        dict(os.environ),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
        ],
        setsid=True,
    )


def sweep_owner(owner: int, started: int, host: str, session: str = "") -> Removed:
    """Remove what the sessions owned by the (dead) process `owner` on `host` left behind, and
    the images that `session`'s builds made (they carry no mark)."""
    client = docker.from_env(timeout=30)
    try:
        removed = remove_marked(
            client.api,
            lambda mark: (
                mark.owner == owner and mark.started == started and mark.host == host and not mark.keep
            ),
        )
        if session:
            removed.problems += remove_built_images(client.api, session)
        return removed
    finally:
        client.close()


def sweep_stale(api: docker.APIClient, identity: Identity) -> Removed:
    """Remove what sessions from this machine left behind when their owner process is gone."""
    return remove_marked(
        api,
        lambda mark: (
            mark.host == identity.host and not mark.keep and not identity.made(mark) and not mark.owner_alive
        ),
    )
