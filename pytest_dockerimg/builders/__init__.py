"""The builders behind one interface: `classic` (the engine API, docker-py) and `buildkit` (the
docker CLI). Each builds a `BuildSpec` into a `BuildOutcome` (an untagged image: `Builder` in
build.py moves tags and keeps the ledger), or raises `BuildFailed` carrying the `BuildError` and
the images the failed build left (the debug image of a BuildKit failure). Which one a session
uses is decided by `choose.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pytest_dockerimg.buildlog import BuildStep
from pytest_dockerimg.errors import BuildError

if TYPE_CHECKING:
    from pytest_dockerimg.build import BuildSpec


@dataclass(frozen=True)
class MadeImage:
    """An image a build made for the session (recorded in its ledger). `prune`: its layers are no
    use as cache (a --no-cache build of the classic builder) and go with it; `hold`: its layers
    are the classic builder's cache, held when the image goes; `disposable`: removed even with
    --keep-images (the layers of a failed --no-cache build)."""

    id: str
    prune: bool = False
    hold: bool = False
    disposable: bool = False


@dataclass(frozen=True)
class BuildOutcome:
    """A finished build: the image id (never read from progress text), the whole log, the steps
    as the Dockerfile numbers them, and every image the build made."""

    image_id: str
    log: str
    steps: tuple[BuildStep, ...]
    seconds: float
    made: tuple[MadeImage, ...] = ()


class BuildFailed(Exception):
    """A failed build: the `BuildError` for the user, and the images the attempt made."""

    def __init__(self, error: BuildError, made: tuple[MadeImage, ...] = ()) -> None:
        super().__init__(str(error))
        self.error = error
        self.made = made


class ImageBuilder(Protocol):
    """What `Builder` (build.py) needs of a builder."""

    def build(
        self, spec: BuildSpec, *, nocache: bool, pull: bool, progress: Callable[[str], None] | None
    ) -> BuildOutcome: ...


def from_hint(pull: bool) -> str:
    """Why a `FROM` failed: the pull that --docker-pull asked for, or a base the engine lacks."""
    if pull:
        return (
            "--docker-pull made the engine pull the base image and the pull failed; run without "
            "--docker-pull to build from the local image"
        )
    return (
        "the base image is not in the engine, so the engine tried to pull it and failed; build, "
        "load or pull it first (docker build / docker load / docker pull)"
    )


def buildkit_hint() -> str:
    return (
        "build with BuildKit: pytest --docker-builder buildkit (or docker_builder = buildkit in the "
        "ini file), with a docker CLI that has buildx (e.g. Debian's docker-buildx package) or a "
        "docker CLI before 23.0, talking to the same engine"
    )
