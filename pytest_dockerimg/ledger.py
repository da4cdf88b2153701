"""The session ledger: every resource a session creates, recorded the moment it is created,
with its keep decision.

One ledger per process of a session (the xdist controller and each worker), kept as an
append-only file of JSON lines in the session's private state folder, so that the watcher of a
killed session and the stale sweep of a later one read exactly what the session wrote.
Teardown (`cleanup.teardown`) walks the entries in a fixed order: containers, networks, images,
volumes, then tags given back to the images they named before.

The keep policy is decided here and only here (`KeepPolicy`): `--keep-containers` and
`--keep-images` become each entry's `keep` when it is recorded; `if-failed` is settled when the
entry's scope ends, by whether a test of that scope failed.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

Kind = Literal["container", "network", "volume", "image", "tag"]
Keep = Literal["never", "always", "if-failed"]
TEARDOWN_ORDER: tuple[Kind, ...] = ("container", "network", "image", "volume", "tag")
SESSION_SCOPE = "pytest-session"


@dataclass
class Entry:
    """One resource. `ref` is the id of a container, network or image, the name of a volume,
    or a tag (`repo:tag`); for a tag, `image` is the image the session put it on and `previous`
    the one it named before (given back at the end); `prune` marks an image whose layers never
    serve as cache (built with --no-cache) and go with it; `hold` the key of the build spec
    whose cache (untagged, hidden) an image is kept as rather than removed, or empty."""

    kind: Kind
    ref: str
    scope: str = SESSION_SCOPE
    keep: Keep = "never"
    image: str = ""
    previous: str = ""
    prune: bool = False
    hold: str = ""
    kept: bool | None = None  # an `if-failed` entry's decision, once its scope has ended
    gone: bool = False

    @property
    def keep_now(self) -> bool:
        """Whether teardown must leave this resource; an undecided `if-failed` is not kept
        (its session died before a test could fail)."""
        return self.keep == "always" or bool(self.kept)


@dataclass(frozen=True)
class KeepPolicy:
    """`--keep-containers {never,failed,always}` and `--keep-images`, as each entry's `keep`."""

    containers: Literal["never", "failed", "always"] = "never"
    images: bool = False

    def for_kind(self, kind: Kind) -> Keep:
        if kind in ("image", "tag"):
            return "always" if self.images else "never"
        if self.containers == "failed":
            return "if-failed"
        return self.containers

    @property
    def label_value(self) -> Keep:
        """What the label of a container, network or volume says, for other users' sweeps."""
        return self.for_kind("container")


@dataclass
class Ledger:
    """What one process of a session created. With `path`, every change is appended to that
    file at once (one JSON object per line), so a killed process's ledger is complete."""

    path: Path | None = None
    policy: KeepPolicy = field(default_factory=KeepPolicy)
    entries: list[Entry] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(
        self,
        kind: Kind,
        ref: str,
        *,
        scope: str = SESSION_SCOPE,
        image: str = "",
        previous: str = "",
        prune: bool = False,
        hold: str = "",
        keep: Keep | None = None,
    ) -> Entry:
        """Note a resource at the moment it is created (before anything can fail after it)."""
        keep = self.policy.for_kind(kind) if keep is None else keep
        entry = Entry(kind, ref, scope, keep, image=image, previous=previous, prune=prune, hold=hold)
        with self._lock:
            self.entries.append(entry)
            self._append({"add": asdict(entry)})
        return entry

    def settle(self, scope: str, *, failed: bool) -> list[Entry]:
        """The scope ended: settle its `if-failed` entries; the entries now kept."""
        kept = []
        with self._lock:
            for entry in self.entries:
                if entry.scope != scope or entry.gone:
                    continue
                if entry.keep == "if-failed" and entry.kept is None:
                    entry.kept = failed
                    self._append({"settle": entry.ref, "kind": entry.kind, "kept": failed})
                if entry.keep_now:
                    kept.append(entry)
        return kept

    def mark_gone(self, entry: Entry) -> None:
        with self._lock:
            entry.gone = True
            self._append({"gone": entry.ref, "kind": entry.kind})

    def live(self, kinds: Iterable[Kind] = TEARDOWN_ORDER, scope: str | None = None) -> list[Entry]:
        """Entries not yet removed, of `kinds` (and `scope`), newest first within a kind."""
        wanted = set(kinds)
        with self._lock:
            return [
                entry
                for entry in reversed(self.entries)
                if entry.kind in wanted and not entry.gone and (scope is None or entry.scope == scope)
            ]

    def find(self, kind: Kind, ref: str) -> Entry | None:
        with self._lock:
            return next((e for e in self.entries if e.kind == kind and e.ref == ref and not e.gone), None)

    def _append(self, change: dict[str, object]) -> None:
        if self.path is None:
            return
        line = json.dumps(change, separators=(",", ":")) + "\n"
        # O_NOFOLLOW: the state folder is private, but never write through a planted link.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    @classmethod
    def load(cls, path: Path) -> Ledger:
        """Replay a ledger file (of a dead process, for the watcher or the stale sweep). A torn
        last line (the process died while writing it) is ignored."""
        ledger = cls()
        for change in _changes(path):
            added = change.get("add")
            if isinstance(added, dict):
                ledger.entries.append(Entry(**added))
                continue
            ref, kind = change.get("settle") or change.get("gone"), change.get("kind")
            for entry in ledger.entries:
                if entry.ref == ref and entry.kind == kind and not entry.gone:
                    if "settle" in change:
                        entry.kept = bool(change["kept"])
                    else:
                        entry.gone = True
        return ledger


def _changes(path: Path) -> Iterator[dict[str, object]]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return
    with os.fdopen(fd) as lines:
        for line in lines:
            try:
                change = json.loads(line)
            except ValueError:
                continue
            if isinstance(change, dict):
                yield change
