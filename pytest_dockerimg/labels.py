"""The label that marks the containers, networks and volumes the plugin creates, and the
identity of one test session.

Each carries one label, `pytest-dockerimg=kind=<container|network|volume>,session=<id>,
host=<machine>,owner=<pid>,started=<ticks>,keep=<false|true|if-failed>[,in=<container>]`: what
it is, which session made it, on which machine (hostname, boot and pid namespace), which process
owns that session and when that process started (the watcher and the stale sweep check that it
still lives), and the keep decision it was created with, so that a sweep by any user's session
can tell a kept container from a leaked one. `in` names the container of the same engine the
session ran in (a dev container, a CI job with the socket mounted) and when that container
started: when it is gone or was restarted, so is the session, whatever machine looks.

Images carry no mark: a built image is exactly what `docker build` makes. The session ledger
(ledger.py) records the images a session made. Docker copies an image's labels to what is made
from it, which is why `kind` tells a container the plugin created from one made by hand.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

LABEL = "pytest-dockerimg"
ALL = {"label": [LABEL]}
Kind = Literal["container", "network", "volume"]


def scope_prefix(scope: str) -> str:
    """The start of the names of a scope's containers and networks: its pytest node id, as a
    name Docker takes."""
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", scope.partition("@")[0]).strip("-.")[:40] or "pytest"


def new_session_id() -> str:
    return uuid.uuid4().hex[:16]


@lru_cache(maxsize=1)
def this_machine() -> str:
    """The hostname, plus a key of this boot and pid namespace: two containers that share a
    hostname (or a kernel) but not their pids must not judge each other's processes dead."""
    parts = []
    for source in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(
                Path(source).read_text().strip() if "boot" in source else str(os.stat(source).st_ino)
            )
        except OSError:
            parts.append("")
    key = hashlib.sha1("/".join(parts).encode()).hexdigest()[:8]
    return f"{socket.gethostname()}/{key}"


def process_started(pid: int) -> int:
    """When process `pid` started (clock ticks since boot, from /proc), or 0 where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rpartition(")")[2].split()[19])


def process_alive(pid: int, started: int = 0) -> bool:
    """True while process `pid` runs, and is the one that started at `started` (not a reuse)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists; it belongs to someone else
    return not started or process_started(pid) in (0, started)


# Written as earlier versions wrote it (keep=true/false), so that their sweeps still spare a
# kept resource; if-failed is new.
_KEEP_WRITTEN = {"always": "true", "never": "false"}
_KEEP_VALUES = {
    "never": "never",
    "always": "always",
    "if-failed": "if-failed",
    "true": "always",
    "false": "never",
}


@dataclass(frozen=True)
class Mark:
    """What the plugin's label says about a resource."""

    kind: str
    session: str
    host: str
    owner: int
    started: int = 0
    keep: str = "never"
    container: str = ""

    def value(self) -> str:
        fields = {
            "kind": self.kind,
            "session": self.session,
            "host": self.host,
            "owner": str(self.owner),
            "started": str(self.started),
            "keep": _KEEP_WRITTEN.get(self.keep, self.keep),
            "in": self.container,
        }
        return ",".join(f"{key}={value}" for key, value in fields.items() if value)

    @classmethod
    def of(cls, labels: dict[str, str] | None) -> Mark | None:
        """The mark on a resource, or None when it has none (the plugin did not create it)."""
        value = (labels or {}).get(LABEL)
        if not value:
            return None
        fields = dict(part.partition("=")[::2] for part in value.split(","))
        try:
            return cls(
                kind=fields["kind"],
                session=fields["session"],
                host=fields["host"],
                owner=int(fields["owner"]),
                started=int(fields.get("started") or 0),
                keep=_KEEP_VALUES.get(fields.get("keep", ""), "never"),
                container=fields.get("in", ""),
            )
        except (KeyError, ValueError):
            return None

    @property
    def kept(self) -> bool:
        """Whether the resource may have been kept on purpose (`if-failed` included: only the
        session's own ledger knows how its test ended)."""
        return self.keep != "never"


def container_key(attrs: Mapping[str, Any]) -> str:
    """`<short id>.<start key>` of a container, from its inspect record: it names that container
    for as long as it runs without a restart."""
    started = str((attrs.get("State") or {}).get("StartedAt") or "")
    return f"{str(attrs.get('Id', ''))[:12]}.{hashlib.sha1(started.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Identity:
    """Which test session, owned by which process on which machine (in which container of the
    engine, when it runs in one: see `container_key`), creates resources."""

    session: str
    host: str
    owner: int
    started: int = 0
    container: str = ""

    @classmethod
    def create(
        cls, session: str | None = None, owner: int | None = None, started: int | None = None
    ) -> Identity:
        pid = owner or os.getpid()
        return cls(
            session or new_session_id(),
            this_machine(),
            pid,
            process_started(pid) if started is None else started,
        )

    def labels(self, kind: Kind, *, keep: str = "never") -> dict[str, str]:
        """The label for a new resource: `identity.labels("container", keep="if-failed")`."""
        mark = Mark(kind, self.session, self.host, self.owner, self.started, keep, self.container)
        return {LABEL: mark.value()}

    def made(self, mark: Mark | None) -> bool:
        """Whether `mark` says this session made the resource (kept ones included)."""
        return mark is not None and mark.session == self.session and mark.host == self.host
