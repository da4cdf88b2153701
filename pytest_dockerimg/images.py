"""`Image`: a thin wrapper over docker-py's image, with what the build reported about it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from docker.models.images import Image as RawImage

from .buildlog import BuildStep
from .tags import short_tag

_FRACTION = re.compile(r"\.(\d+)")


def parse_timestamp(value: str | int | float | None) -> datetime | None:
    """The engine's RFC 3339 timestamps (nanoseconds included) or unix seconds, as UTC datetimes."""
    if value in (None, "", 0):
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    # Python parses at most microseconds; the engine gives nanoseconds.
    text = _FRACTION.sub(lambda m: "." + m[1][:6].ljust(6, "0"), value.replace("Z", "+00:00"))
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class HistoryRow:
    """One row of `docker history`."""

    id: str
    created: datetime | None
    created_by: str
    size: int
    comment: str
    tags: tuple[str, ...]


class Image:
    """An image built, committed or pulled by the plugin. `.raw` is the docker-py object."""

    def __init__(
        self,
        raw: RawImage,
        *,
        ref: str | None = None,
        build_log: str = "",
        steps: Sequence[BuildStep] = (),
        reused: bool = False,
        build_seconds: float | None = None,
    ) -> None:
        self.raw = raw
        self._ref = ref
        self.build_log = build_log
        self.steps: list[BuildStep] = list(steps)
        self.reused = reused
        self.build_seconds = build_seconds

    def __repr__(self) -> str:
        return f"<Image {self.ref} {self.short_id}>"

    @property
    def attrs(self) -> dict[str, Any]:
        return self.raw.attrs

    @property
    def _config(self) -> dict[str, Any]:
        return self.attrs.get("Config") or {}

    @property
    def id(self) -> str:
        return str(self.raw.id)

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    @property
    def tags(self) -> list[str]:
        """`REPOSITORY:TAG` names, as `docker images` shows them (podman's `localhost/` and
        `docker.io/library/` prefixes left out)."""
        return [short_tag(tag) for tag in self.raw.tags]

    @property
    def ref(self) -> str:
        """The tag this image was asked for, else its first tag, else its id."""
        if self._ref:
            return self._ref
        return self.tags[0] if self.tags else self.id

    @property
    def labels(self) -> dict[str, str]:
        return dict(self._config.get("Labels") or {})

    @property
    def env(self) -> dict[str, str]:
        pairs = (item.partition("=") for item in self._config.get("Env") or [])
        return {key: value for key, _, value in pairs}

    @property
    def exposed_ports(self) -> list[str]:
        """`EXPOSE`d ports as `"80/tcp"` strings."""
        return sorted(self._config.get("ExposedPorts") or {}, key=lambda p: (int(p.split("/")[0]), p))

    @property
    def author(self) -> str:
        return str(self.attrs.get("Author") or "")

    @property
    def comment(self) -> str:
        return str(self.attrs.get("Comment") or "")

    @property
    def created(self) -> datetime | None:
        return parse_timestamp(self.attrs.get("Created"))

    @property
    def size(self) -> int:
        return int(self.attrs.get("Size") or 0)

    @property
    def cached(self) -> bool:
        """True when no step had to run: every step came from the layer cache, or no build ran."""
        return self.reused or all(step.cached for step in self.steps)

    def history(self) -> list[HistoryRow]:
        """The `docker history` rows, newest layer first."""
        return [
            HistoryRow(
                id=str(row.get("Id") or ""),
                created=parse_timestamp(row.get("Created")),
                created_by=str(row.get("CreatedBy") or ""),
                size=int(row.get("Size") or 0),
                comment=str(row.get("Comment") or ""),
                tags=tuple(row.get("Tags") or ()),
            )
            for row in self.raw.history()
        ]

    def reload(self) -> Image:
        self.raw.reload()
        return self
