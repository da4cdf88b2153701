"""Where a session's Docker time went: builds, container starts, readiness waits and teardown,
for the terminal summary. Plain data, so xdist workers can send theirs to the controller.

Under xdist one worker builds an image and the others read its result back; those read-back
records are `shared`: they say the worker used the image, but the image counts once, as its
builder reported it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class BuildRecord:
    name: str
    seconds: float
    steps: int
    cached_steps: int
    reused: bool = False
    failed: bool = False
    shared: bool = False  # built (or reused) for the session by another xdist worker


@dataclass
class Stats:
    builds: list[BuildRecord] = field(default_factory=list)
    containers: int = 0
    build_seconds: float = 0.0
    start_seconds: float = 0.0
    ready_seconds: float = 0.0
    teardown_seconds: float = 0.0

    def add_build(self, record: BuildRecord) -> None:
        self.builds.append(record)
        self.build_seconds += record.seconds

    def merge(self, other: Stats) -> None:
        self.builds += other.builds
        self.containers += other.containers
        self.build_seconds += other.build_seconds
        self.start_seconds += other.start_seconds
        self.ready_seconds += other.ready_seconds
        self.teardown_seconds += other.teardown_seconds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stats:
        builds = [BuildRecord(**record) for record in data.get("builds", [])]
        return cls(builds=builds, **{k: v for k, v in data.items() if k != "builds"})

    @property
    def distinct_builds(self) -> list[BuildRecord]:
        """One record per image of the session, however many workers used it."""
        return [build for build in self.builds if not build.shared]

    @property
    def empty(self) -> bool:
        return not self.distinct_builds and not self.containers

    def lines(self) -> list[str]:
        """The summary: one line per image, then the totals."""
        rows = []
        builds = self.distinct_builds
        for build in builds:
            if build.failed:
                how = f"FAILED after {build.seconds:.1f} s"
            elif build.reused:
                how = "reused (inputs unchanged, no build)"
            else:
                how = f"{build.seconds:.1f} s, {build.cached_steps}/{build.steps} steps cached"
            rows.append(f"image {build.name}: {how}")
        rows.append(
            f"{len(builds)} image(s), {self.containers} container(s); "
            f"build {self.build_seconds:.1f} s, start {self.start_seconds:.1f} s, "
            f"ready {self.ready_seconds:.1f} s, teardown {self.teardown_seconds:.1f} s"
        )
        return rows
