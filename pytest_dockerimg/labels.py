"""The label that marks everything the plugin creates, and the identity of one test session.

Every container, image, volume and network the plugin creates carries one label, `pytest-dockerimg=
kind=<container|image|commit|volume|network>,session=<id>,host=<machine>,owner=<pid>,started=<ticks>,
keep=<true|false>[,inputs=<digest>][,prune=true][,source=<container>]`:
what it is, which session made it, on which machine (hostname, boot and pid namespace), which
process owns that session and when that process started (the watcher and the stale sweep check
that it still lives), and whether it was kept on purpose. Built images add `inputs` (for reuse
when the build inputs are unchanged) and `prune` when built with --no-cache (their layers never
serve as cache); commits name their `source` container.

One label rather than several: the classic builder adds one build step per label. Docker copies
labels from an image to what is made from it, so the mark alone does not prove that the plugin
made a resource: `kind` tells a container the plugin created (marked `container`) from one
that merely inherited its image's mark, and `cleanup.py` checks an image's history too.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

LABEL = "pytest-dockerimg"
ALL = {"label": [LABEL]}
Kind = Literal["container", "image", "commit", "volume", "network"]


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


@dataclass(frozen=True)
class Mark:
    """What the plugin's label says about a resource."""

    kind: str
    session: str
    host: str
    owner: int
    started: int = 0
    keep: bool = False
    inputs: str = ""
    prune: bool = False
    source: str = ""

    def value(self) -> str:
        fields = {
            "kind": self.kind,
            "session": self.session,
            "host": self.host,
            "owner": str(self.owner),
            "started": str(self.started),
            "keep": str(self.keep).lower(),
            "inputs": self.inputs,
            "prune": "true" if self.prune else "",
            "source": self.source,
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
                keep=fields.get("keep") == "true",
                inputs=fields.get("inputs", ""),
                prune=fields.get("prune") == "true",
                source=fields.get("source", ""),
            )
        except (KeyError, ValueError):
            return None

    @property
    def owner_alive(self) -> bool:
        return process_alive(self.owner, self.started)


@dataclass(frozen=True)
class Identity:
    """Which test session, owned by which process on which machine, creates resources."""

    session: str
    host: str
    owner: int
    started: int = 0

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

    def labels(
        self, kind: Kind, *, keep: bool = False, inputs: str = "", prune: bool = False, source: str = ""
    ) -> dict[str, str]:
        """The label for a new resource: `identity.labels("image", keep=True, inputs=digest)`."""
        mark = Mark(kind, self.session, self.host, self.owner, self.started, keep, inputs, prune, source)
        return {LABEL: mark.value()}

    def made(self, mark: Mark | None) -> bool:
        """Whether `mark` says this session made the resource (kept ones included)."""
        return mark is not None and mark.session == self.session and mark.host == self.host
