"""BuildKit, through the docker CLI (`docker buildx build --load`, or `DOCKER_BUILDKIT=1 docker
build` for a CLI with built-in BuildKit): the image id from `--iidfile` (or, where the engine
keeps images in containerd and names them by manifest, from `--metadata-file`), live steps from
the progress stream. BuildKit keeps no intermediate images: after a failed step, the Dockerfile cut
just before that step is built (all cache hits) as the image to debug from."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_dockerimg.dockerfile import Dockerfile, Instruction
from pytest_dockerimg.engine import Engine
from pytest_dockerimg.errors import BuildError
from pytest_dockerimg.progress import BuildProgress
from pytest_dockerimg.tags import image_of

from . import BuildFailed, BuildOutcome, MadeImage, from_hint
from .buildkit_log import BuildKitLog
from .choose import Cli

if TYPE_CHECKING:
    from pytest_dockerimg.build import BuildSpec

HEREDOC_ENGINE = 23  # the first Engine whose built-in Dockerfile frontend reads heredocs


def engine_major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


class BuildKitBuilder:
    """Builds with BuildKit through `cli`, on the engine the plugin talks to."""

    def __init__(self, engine: Engine, cli: Cli) -> None:
        self.engine = engine
        self.cli = cli

    def build(
        self, spec: BuildSpec, *, nocache: bool, pull: bool, progress: Callable[[str], None] | None
    ) -> BuildOutcome:
        dockerfile = None if spec.remote else Dockerfile(spec.dockerfile_path.read_text())
        if dockerfile is not None:
            self._refuse(spec, dockerfile)
        started = time.monotonic()
        with BuildProgress(spec.name, progress) as reporter:
            log, image_id = self._run(spec, dockerfile, nocache=nocache, pull=pull, on_step=reporter.step)
            if image_id is None:
                raise self._failure(spec, dockerfile, log, pull=pull)
        return BuildOutcome(
            image_id=image_id,
            log=log.text,
            steps=tuple(log.steps),
            seconds=round(time.monotonic() - started, 3),
            made=(MadeImage(image_id),),
        )

    def _refuse(self, spec: BuildSpec, dockerfile: Dockerfile) -> None:
        """Refuse, before building, what cannot build offline or on this engine."""
        problem = None
        if "syntax" in dockerfile.directives:
            line, value = dockerfile.directives["syntax"]
            problem = (
                f"{spec.dockerfile_path.name} line {line}: `# syntax={value}` makes BuildKit pull the "
                f"Dockerfile frontend image {value} from its registry before building; remove the line "
                "to build with the engine's built-in frontend (no pull)"
            )
        elif dockerfile.heredocs and engine_major(self.engine.version) < HEREDOC_ENGINE:
            line, word = dockerfile.heredocs[0]
            problem = (
                f"{spec.dockerfile_path.name} line {line}: a heredoc (`<<{word}`); the Dockerfile "
                f"frontend built into Docker Engine {self.engine.version} does not read heredocs "
                f"(Engine {HEREDOC_ENGINE}.0 and later do): rewrite the step without it, or use a "
                "newer engine"
            )
        if problem:
            raise BuildFailed(BuildError(spec.describe(), problem))

    def _command(self, spec: BuildSpec, dockerfile: str | None, iidfile: Path, *, progress: str) -> list[str]:
        command = [*self.cli.build_command(), f"--progress={progress}", "--iidfile", str(iidfile)]
        if self.cli.buildx:
            command += ["--metadata-file", str(iidfile.with_name("metadata.json"))]
        if dockerfile is not None:
            command += ["--file", dockerfile]
        for key, value in spec.buildargs:
            command += ["--build-arg", f"{key}={value}"]
        for ident, path in spec.secrets:
            command += ["--secret", f"id={ident},src={path}"]
        if spec.platform:
            command += ["--platform", spec.platform]
        return command

    def environment(self) -> dict[str, str]:
        """The CLI's environment, pointed at the plugin's engine the fastest way there is."""
        env = self.cli.environment()
        host = self.engine.cli_host()
        if host is not None:
            env["DOCKER_HOST"] = host
            env.pop("DOCKER_CONTEXT", None)
        return env

    def _execute(self, command: list[str], log: BuildKitLog, iidfile: Path) -> str | None:
        """Run the CLI, feeding its progress to `log`; the image id, or None when it failed."""
        with subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=self.environment(),
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                log.feed(line)
            code = process.wait()
        log.finish()
        image_id = iidfile.read_text().strip() if iidfile.is_file() else ""
        if code != 0 or not image_id:
            return None
        return self._stored_id(image_id, iidfile.with_name("metadata.json"))

    def _stored_id(self, image_id: str, metadata: Path) -> str:
        """The id under which the engine keeps the image: the iidfile's (the config digest, the
        image id of Docker's classic image store), or the manifest digest buildx reports, which
        is the id in the containerd image store (Engine 29's default)."""
        if image_of(self.engine.api, image_id) is not None:
            return image_id
        try:
            manifest = json.loads(metadata.read_text()).get("containerimage.digest")
        except (OSError, ValueError):
            return image_id
        return manifest if isinstance(manifest, str) and manifest else image_id

    def _run(
        self,
        spec: BuildSpec,
        dockerfile: Dockerfile | None,
        *,
        nocache: bool,
        pull: bool,
        on_step: Callable[[str], None],
    ) -> tuple[BuildKitLog, str | None]:
        log = BuildKitLog(dockerfile, on_step=on_step)
        with tempfile.TemporaryDirectory(prefix="dockerimg-build-") as folder:
            iidfile = Path(folder) / "iid"
            file = str(spec.dockerfile_path) if not spec.remote else spec.dockerfile
            command = self._command(spec, file, iidfile, progress="rawjson" if self.cli.rawjson else "plain")
            if spec.target:
                command += ["--target", spec.target]
            for key, value in spec.labels:
                command += ["--label", f"{key}={value}"]
            if nocache:
                command.append("--no-cache")
            if pull:
                command.append("--pull")
            return log, self._execute([*command, spec.context], log, iidfile)

    def _failure(
        self, spec: BuildSpec, dockerfile: Dockerfile | None, log: BuildKitLog, *, pull: bool
    ) -> BuildFailed:
        failed = log.failed
        instruction = failed.instruction if failed else None
        hint = None
        if instruction is not None and instruction.keyword == "FROM":
            hint = from_hint(pull)
        elif log.parse_error is not None and dockerfile is not None:
            line = log.parse_error[0]
            instruction = next((i for i in dockerfile.instructions if i.line <= line <= i.end_line), None)
            hint = (
                f"the Dockerfile frontend built into Docker Engine {self.engine.version} does not know "
                "this syntax; newer engines do (23.0 and later), or rewrite the line"
            )
        debug = None
        if dockerfile is not None and instruction is not None and failed is not None:
            debug = self._debug_image(spec, dockerfile, instruction)
        error = BuildError(
            spec.describe(),
            log.message,
            step=instruction.index if instruction else None,
            total=len(dockerfile.instructions) if dockerfile and instruction else None,
            instruction=instruction.text if instruction else (failed.name if failed else None),
            exit_code=log.exit_code,
            log=log.text,
            output="\n".join(failed.output) if failed else "",
            last_image_id=debug,
            hint=hint,
        )
        return BuildFailed(error, (MadeImage(debug),) if debug else ())

    def _debug_image(self, spec: BuildSpec, dockerfile: Dockerfile, failed: Instruction) -> str | None:
        """Build the Dockerfile cut just before `failed` (its stage is then the last one, the
        default target): every step comes from the cache of the failed build."""
        if failed.keyword == "FROM":
            return None
        with tempfile.TemporaryDirectory(prefix="dockerimg-debug-") as folder:
            cut = Path(folder) / spec.dockerfile_path.name
            cut.write_text(dockerfile.cut_before(failed))
            ignore = spec.dockerfile_path.with_name(spec.dockerfile_path.name + ".dockerignore")
            if ignore.is_file():  # BuildKit reads <Dockerfile>.dockerignore next to the Dockerfile
                shutil.copy(ignore, cut.with_name(ignore.name))
            iidfile = Path(folder) / "iid"
            command = [*self._command(spec, str(cut), iidfile, progress="plain"), spec.context]
            return self._execute(command, BuildKitLog(), iidfile)
