"""The BuildKit-only Dockerfile features, each built with both builders of the plugin on this
engine: built, or refused (before building, or by the engine) with the message the user sees.

    python benchmarks/features.py
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from pytest_dockerimg.build import BuildSpec
from pytest_dockerimg.builders import BuildFailed, ImageBuilder
from pytest_dockerimg.builders.buildkit import BuildKitBuilder
from pytest_dockerimg.builders.choose import choose_builder
from pytest_dockerimg.builders.classic import ClassicBuilder
from pytest_dockerimg.engine import connect
from pytest_dockerimg.state import state_dir

FEATURES = {
    "RUN --mount=type=cache": "RUN --mount=type=cache,target=/cache echo hi > /cache/x",
    "RUN --mount=type=secret": "RUN --mount=type=secret,id=token wc -c < /run/secrets/token",
    "RUN --network=none": "RUN --network=none true",
    "COPY --chmod": "COPY --chmod=0755 a.txt /a.txt",
    "COPY --link": "COPY --link a.txt /a.txt",
    "ADD --checksum": "ADD --checksum=sha256:0000 a.txt /a.txt",
    "COPY --exclude": "COPY --exclude=*.log . /app",
    "COPY --parents": "COPY --parents a.txt /app/",
    "heredoc RUN <<EOF": "RUN <<EOF\necho hi > /said\nEOF",
    "heredoc COPY <<EOF": "COPY <<EOF /said\nhi\nEOF",
    "ARG TARGETARCH": 'ARG TARGETARCH\nRUN echo "$TARGETARCH" > /arch',
    "FROM --platform=$BUILDPLATFORM": None,
    "# syntax=docker/dockerfile:1": None,
}


def dockerfile(feature: str, step: str | None) -> str:
    token = f"RUN echo {uuid.uuid4().hex} > /token"
    if feature.startswith("FROM"):
        return f"FROM --platform=$BUILDPLATFORM busybox:latest\n{token}\n"
    if feature.startswith("#"):
        return f"# syntax=docker/dockerfile:1\nFROM busybox:latest\n{token}\n"
    return f"FROM busybox:latest\n{token}\n{step}\n"


def attempt(builder: ImageBuilder, feature: str, step: str | None, engine_api: object) -> str:
    folder = Path(tempfile.mkdtemp(prefix="features-"))
    (folder / "Dockerfile").write_text(dockerfile(feature, step))
    (folder / "a.txt").write_text("a\n")
    (folder / "token.txt").write_text("s3cret")
    secrets = {"token": folder / "token.txt"} if "secret" in feature and builder.name == "BuildKit" else None
    try:
        outcome = builder.build(
            BuildSpec.create(folder, secrets=secrets), nocache=False, pull=False, progress=None
        )
    except BuildFailed as failure:
        for image in failure.made:
            engine_api.remove_image(image.id)  # type: ignore[attr-defined]
        error = failure.error
        lines = [line.strip() for line in error.message.splitlines() if line.strip()]
        return "refused: " + " / ".join(lines[-1:] if len(lines) > 1 else lines)
    engine_api.remove_image(outcome.image_id, noprune=True)  # type: ignore[attr-defined]
    return "built"


def main() -> None:
    engine = connect()
    choice = choose_builder("auto", str(engine.client.info()["ID"]), state_dir() / "builder-choice.json")
    builders: list[ImageBuilder] = [ClassicBuilder(engine)]
    if choice.cli is not None:
        builders.insert(0, BuildKitBuilder(engine, choice.cli))
    print(f"engine {engine.version}; BuildKit: {choice.describe()}\n")
    for feature, step in FEATURES.items():
        for builder in builders:
            print(f"{feature:32} {builder.name:9} {attempt(builder, feature, step, engine.api)}")
    engine.close()


if __name__ == "__main__":
    main()
