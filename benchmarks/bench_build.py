"""Benchmark: a cold and a cached build of the same small Dockerfile with each builder of the
plugin (BuildKit through the docker CLI, classic through the engine API), side by side with the
plain CLI (`docker build`, and `DOCKER_BUILDKIT=0 docker build` for the classic builder). The
cached build is what a new session sees: the first build's image removed with `rmi --no-prune`.

    python benchmarks/bench_build.py
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from pytest_dockerimg.build import BuildSpec
from pytest_dockerimg.builders import ImageBuilder
from pytest_dockerimg.builders.buildkit import BuildKitBuilder
from pytest_dockerimg.builders.choose import choose_builder
from pytest_dockerimg.builders.classic import ClassicBuilder
from pytest_dockerimg.engine import connect
from pytest_dockerimg.state import state_dir

DOCKERFILE = """\
FROM busybox:latest
RUN echo {token} > /token
COPY app.txt /www/app.txt
RUN mkdir -p /www && echo 'Hi, I am in your container' > /www/index.html
ENV GREETING=hello
EXPOSE 80
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
"""


def context() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-build-"))
    (folder / "Dockerfile").write_text(DOCKERFILE.format(token=uuid.uuid4().hex))
    (folder / "app.txt").write_text("app\n")
    return folder


def plugin_build(builder: ImageBuilder, folder: Path) -> tuple[float, str, str]:
    started = time.perf_counter()
    outcome = builder.build(BuildSpec.create(folder), nocache=False, pull=False, progress=None)
    cached = sum(step.cached for step in outcome.steps)
    return time.perf_counter() - started, outcome.image_id, f"{cached}/{len(outcome.steps)} steps cached"


def cli_build(env: dict[str, str], folder: Path) -> tuple[float, str, str]:
    iid = folder / "iid"
    started = time.perf_counter()
    subprocess.run(
        ["docker", "build", "-q", "--iidfile", str(iid), str(folder)],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started, iid.read_text().strip(), ""


def build(how: object, folder: Path) -> tuple[float, str, str]:
    """With a builder of the plugin, or with the CLI in the environment `how`."""
    if isinstance(how, dict):
        return cli_build(how, folder)
    return plugin_build(how, folder)  # type: ignore[arg-type]


def main() -> None:
    engine = connect()
    choice = choose_builder("auto", str(engine.client.info()["ID"]), state_dir() / "builder-choice.json")
    runs: list[tuple[str, object]] = []
    if choice.cli is not None:
        runs.append((f"plugin, BuildKit ({choice.cli.describe()})", BuildKitBuilder(engine, choice.cli)))
    runs.append(("plugin, classic (engine API)", ClassicBuilder(engine)))
    runs.append(("docker build (CLI default)", dict(os.environ)))
    runs.append(("DOCKER_BUILDKIT=0 docker build", {**os.environ, "DOCKER_BUILDKIT": "0"}))
    print(f"engine {engine.version}; same Dockerfile, a new token per builder\n")
    print(f"{'builder':64} {'cold s':>7} {'cached s':>9}  steps")
    for name, how in runs:
        folder = context()
        cold, image_id, _ = build(how, folder)
        engine.api.remove_image(image_id, noprune=True)
        cached, image_id, steps = build(how, folder)
        engine.api.remove_image(image_id, noprune=True)
        print(f"{name:64} {cold:7.2f} {cached:9.2f}  {steps}")
    engine.close()


if __name__ == "__main__":
    main()
