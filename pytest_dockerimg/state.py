"""Files this machine keeps for the plugin, in one private folder per user (`<tmp>/pytest-
dockerimg-<uid>`, mode 0700, its owner checked, links never followed): per session its owner,
the ledger of each of its processes, build locks and build records (how xdist workers build an
image once); per user the kept images that a later session may reuse, and the tags that live
sessions have taken.

A session's folder goes at its end; the folder of a session whose owner died goes at the next
start, after the stale sweep has removed what its ledger lists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from .errors import DockerImgError


class StateDirError(DockerImgError):
    """The state folder exists but is not this user's private folder."""


def state_dir() -> Path:
    """The private state folder, created 0700 on first use. Another user's folder, a link or a
    folder others can write is refused (they could make the plugin remove files or resources)."""
    folder = Path(tempfile.gettempdir()) / f"pytest-dockerimg-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise StateDirError(
            f"{folder} is not a folder of this user (a link, or owned by uid {info.st_uid}); "
            "remove it, it may have been planted"
        )
    if info.st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


def builder_choice_file() -> Path:
    """Where the builder choices of earlier sessions are kept (per engine and environment)."""
    return state_dir() / "builder-choice.json"


def _json(path: Path) -> Any:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd) as file:
        try:
            return json.load(file)
        except ValueError:
            return None


def _write_json(path: Path, value: object) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(value, file)
    temporary.replace(path)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Owner:
    """The process that owns a session: its pid, when it started, on which machine, and the
    engine the session used (a ledger is replayed against that engine only)."""

    pid: int
    started: int
    host: str
    engine: str = ""


@dataclass(frozen=True)
class SessionFiles:
    """The state of one session: `SessionFiles(session)`."""

    session: str

    @property
    def folder(self) -> Path:
        folder = state_dir() / "sessions" / self.session
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder

    def write_owner(self, owner: Owner) -> None:
        _write_json(self.folder / "owner.json", owner.__dict__)

    def ledger_path(self, pid: int) -> Path:
        return self.folder / f"ledger-{pid}.jsonl"

    def ledger_paths(self) -> list[Path]:
        return sorted(self.folder.glob("ledger-*.jsonl"))

    def build_lock(self, key: str) -> FileLock:
        """Held while one process of the session builds the spec `key`."""
        return FileLock(str(self.folder / f"build-{key}.lock"))

    def read_build(self, key: str) -> dict[str, Any] | None:
        """What the first build of `key` in this session produced, if it ran."""
        record = _json(self.folder / f"build-{key}.json")
        return dict(record) if isinstance(record, dict) else None

    def write_build(self, key: str, record: dict[str, Any]) -> None:
        _write_json(self.folder / f"build-{key}.json", record)

    def remove(self) -> None:
        shutil.rmtree(state_dir() / "sessions" / self.session, ignore_errors=True)


def sessions() -> Iterator[tuple[SessionFiles, Owner | None]]:
    """Every session with a folder here, and its owner (None when unknown)."""
    root = state_dir() / "sessions"
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if folder.is_symlink() or not folder.is_dir():
            continue
        owner = _json(folder / "owner.json")
        try:
            found = (
                Owner(
                    int(owner["pid"]), int(owner["started"]), str(owner["host"]), str(owner.get("engine", ""))
                )
                if owner
                else None
            )
        except (KeyError, TypeError, ValueError):
            found = None
        yield SessionFiles(folder.name), found


class KeptImages:
    """The images `--keep-images` kept, by build spec: `{spec key: {"digest", "id"}}`. A later
    session reuses one when the inputs digest still matches, and replaces it when they changed
    (so that kept images do not pile up)."""

    def __init__(self) -> None:
        self.path = state_dir() / "kept-images.json"
        self.lock = FileLock(str(state_dir() / "kept-images.lock"))

    def get(self, spec_key: str) -> dict[str, str] | None:
        record = (_json(self.path) or {}).get(spec_key)
        return dict(record) if isinstance(record, dict) else None

    def put(self, spec_key: str, digest: str, image_id: str) -> None:
        with self.lock:
            records = _json(self.path) or {}
            records[spec_key] = {"digest": digest, "id": image_id}
            _write_json(self.path, records)


class TagClaims:
    """Which live session has moved a tag of `engine` onto its own build: a second session
    building the same tag is told, and each session's `docker_run("repo:tag")` runs its own
    build. (The same tag on another engine is another tag.)"""

    def __init__(self, engine: str) -> None:
        self.folder = state_dir() / "tags"
        self.folder.mkdir(exist_ok=True, mode=0o700)
        self.engine = engine

    def claim(self, tag: str, session: str, owner: Owner, image_id: str) -> dict[str, Any] | None:
        """Record the claim; the claim it replaced (another session's), if any."""
        path = self.folder / f"{_key(self.engine + ' ' + tag)}.json"
        with FileLock(str(path) + ".lock"):
            previous = _json(path)
            _write_json(path, {"tag": tag, "session": session, "image": image_id, **owner.__dict__})
        return dict(previous) if isinstance(previous, dict) and previous.get("session") != session else None

    def release(self, tag: str, session: str) -> None:
        path = self.folder / f"{_key(self.engine + ' ' + tag)}.json"
        with FileLock(str(path) + ".lock"):
            current = _json(path)
            if isinstance(current, dict) and current.get("session") == session:
                path.unlink(missing_ok=True)
