"""The classic builder, through the engine API (docker-py's streamed `build`): the fallback where
no docker CLI can build with BuildKit. It refuses BuildKit-only syntax before building."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import requests
from docker.errors import APIError, DockerException, ImageNotFound

from pytest_dockerimg.buildlog import BuildLog, BuildStep
from pytest_dockerimg.dockerfile import scan_buildkit_only
from pytest_dockerimg.engine import Engine
from pytest_dockerimg.errors import BuildError
from pytest_dockerimg.progress import BuildProgress

from . import BuildFailed, BuildOutcome, MadeImage, buildkit_hint, from_hint

if TYPE_CHECKING:
    from pytest_dockerimg.build import BuildSpec

BUILD_READ_TIMEOUT = 900  # seconds without a line of build output: a step may be silent for minutes


def refuse_buildkit_syntax(spec: BuildSpec) -> None:
    """Raise `BuildFailed` when the Dockerfile uses syntax that only BuildKit builds, naming each
    use with its line."""
    if spec.remote or not spec.dockerfile_path.is_file():
        return
    findings = scan_buildkit_only(spec.dockerfile_path.read_text())
    if not findings:
        return
    uses = "\n".join(f"    {spec.dockerfile_path.name} {finding}" for finding in findings)
    message = (
        "the Dockerfile uses syntax that only BuildKit builds, and this session builds with the "
        f"classic builder:\n{uses}"
    )
    raise BuildFailed(BuildError(spec.describe(), message, hint=buildkit_hint()))


class ClassicBuilder:
    """Builds through the engine API. Each step is an image: the last one before a failure is
    the layer to debug from, and the cache itself (it is not removed)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def build(
        self, spec: BuildSpec, *, nocache: bool, pull: bool, progress: Callable[[str], None] | None
    ) -> BuildOutcome:
        refuse_buildkit_syntax(spec)
        labels = dict(spec.labels)
        started = time.monotonic()
        with BuildProgress(spec.name, progress) as reporter:
            log = BuildLog(on_step=reporter.step, appended=len(labels))
            try:
                for chunk in self.engine.api.build(
                    path=spec.context,
                    dockerfile=spec.dockerfile,
                    buildargs=dict(spec.buildargs) or None,
                    target=spec.target,
                    labels=labels or None,
                    nocache=nocache,
                    pull=pull,
                    platform=spec.platform,
                    rm=True,
                    forcerm=True,  # remove the failed step's container too; its parent layer stays
                    decode=True,
                    timeout=BUILD_READ_TIMEOUT,
                ):
                    log.feed(chunk)
            except APIError as error:
                log.fail(str(error.explanation or error))
            except (DockerException, requests.RequestException, OSError) as error:
                log.fail(f"{type(error).__name__}: {error}")
            log.finish()
            if log.error is not None or log.image_id is None:
                # A --no-cache build's layers never serve as cache: they go at the end.
                layers = log.fresh_layers
                made = (MadeImage(layers[-1], prune=True, disposable=True),) if nocache and layers else ()
                raise BuildFailed(self._error(spec, log, pull=pull), made)
        return BuildOutcome(
            image_id=log.image_id,
            log="\n".join(log.lines),
            steps=tuple(self._with_base_ids(log.steps)),
            seconds=round(time.monotonic() - started, 3),
            made=(MadeImage(log.image_id, prune=nocache, hold=not nocache),),
        )

    def _with_base_ids(self, steps: list[BuildStep]) -> list[BuildStep]:
        """Steps whose FROM names its base image's id, as Docker's output does (podman's gives
        none): the base as the engine has it; a stage name or an `$ARG` stays without one."""
        done = []
        for step in steps:
            words = [word for word in step.instruction.split()[1:] if not word.startswith("--")]
            if step.image_id is None and step.instruction.upper().startswith("FROM ") and words:
                with contextlib.suppress(ImageNotFound, APIError):
                    found = str(self.engine.api.inspect_image(words[0])["Id"])  # type: ignore[no-untyped-call]
                    step = dataclasses.replace(step, image_id=found.removeprefix("sha256:")[:12])
            done.append(step)
        return done

    def _error(self, spec: BuildSpec, log: BuildLog, *, pull: bool) -> BuildError:
        failed = log.failed_step
        from_failed = failed is not None and failed.instruction.upper().startswith("FROM")
        hint = from_hint(pull) if from_failed else None
        return BuildError(
            spec.describe(),
            log.error or "the engine reported no image",
            step=failed.index if failed else None,
            total=failed.total if failed else None,
            instruction=failed.instruction if failed else None,
            exit_code=log.error_code,
            log="\n".join(log.lines),
            output="\n".join(log.failed_output),
            last_image_id=log.last_image_id,
            hint=hint,
        )
