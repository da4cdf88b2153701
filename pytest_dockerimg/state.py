"""Files that this machine keeps for the plugin, under the temp dir: per-session build locks and
build records (how xdist workers build an image once), and the containers kept on purpose by
`--keep-containers failed`, which no later cleanup or sweep may remove."""

from __future__ import annotations

import getpass
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from filelock import FileLock


def state_dir() -> Path:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    return Path(tempfile.gettempdir()) / f"pytest-dockerimg-{user}"


def _session_dir(session: str) -> Path:
    folder = state_dir() / "sessions" / session
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def build_lock(session: str, key: str) -> FileLock:
    """Held while one process of the session builds the spec `key`."""
    return FileLock(str(_session_dir(session) / f"{key}.lock"))


def read_build_record(session: str, key: str) -> dict[str, Any] | None:
    """What the first build of `key` in this session produced, if it ran."""
    path = _session_dir(session) / f"{key}.json"
    return dict(json.loads(path.read_text())) if path.exists() else None


def write_build_record(session: str, key: str, record: dict[str, Any]) -> None:
    path = _session_dir(session) / f"{key}.json"
    path.with_suffix(".tmp").write_text(json.dumps(record))
    path.with_suffix(".tmp").replace(path)


def record_session_image(session: str, image_id: str, tag: str | None, prune: bool) -> None:
    """Note an image that a build of the session made (one JSON line each; appends are atomic)."""
    with (_session_dir(session) / "images.jsonl").open("a") as handle:
        handle.write(json.dumps([image_id, tag, prune]) + "\n")


def session_images(session: str) -> list[tuple[str, str | None, bool]]:
    """The images the session's builds made, oldest first."""
    path = _session_dir(session) / "images.jsonl"
    if not path.exists():
        return []
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return [(str(image), tag, bool(prune)) for image, tag, prune in rows]


def forget_session(session: str, *, stale_after: float = 86400.0) -> None:
    """Remove the session's locks and records, at its end; and those of sessions that ended
    without saying so (killed, or builds made outside a pytest session) over a day ago."""
    sessions = state_dir() / "sessions"
    if not sessions.exists():
        return
    now = time.time()
    for folder in sessions.iterdir():
        if folder.name == session or now - folder.stat().st_mtime > stale_after:
            for path in folder.glob("*"):
                path.unlink(missing_ok=True)
            folder.rmdir()


def _kept_dir() -> Path:
    folder = state_dir() / "kept"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def record_kept(container_ids: list[str]) -> None:
    for container_id in container_ids:
        (_kept_dir() / container_id).touch()


def kept_containers(existing: set[str] | None = None) -> set[str]:
    """Ids of the containers kept on purpose; with `existing`, records of gone ones are dropped."""
    kept = set()
    for path in _kept_dir().iterdir():
        if existing is not None and path.name not in existing:
            path.unlink(missing_ok=True)
        else:
            kept.add(path.name)
    return kept
