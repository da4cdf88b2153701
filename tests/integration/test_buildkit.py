"""BuildKit builds through the docker CLI: the Dockerfiles that only BuildKit builds, its failing
step as the same `BuildError` (with a debug image that runs), its cache across sessions, and what
is refused before building (offline: no `# syntax=` frontend pulls)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from pytest_dockerimg import BuildError
from pytest_dockerimg.build import BuildSpec
from pytest_dockerimg.builders import BuildFailed
from pytest_dockerimg.builders.buildkit import HEREDOC_ENGINE, BuildKitBuilder, engine_major
from pytest_dockerimg.builders.choose import Cli, candidate_clis, choose_builder
from pytest_dockerimg.engine import connect
from pytest_dockerimg.plugin import SESSION_KEY


@pytest.fixture(scope="module")
def buildkit(request, docker_engine) -> Cli:
    """The docker CLI this session builds with; the module is skipped with the classic builder."""
    choice = request.config.stash[SESSION_KEY].builder_choice()
    if choice.cli is None:
        pytest.skip(f"this session builds with the classic builder: {choice.reason}")
    return choice.cli


def fresh(*instructions: str) -> str:
    """A Dockerfile whose first step no earlier build has cached."""
    return "\n".join(["FROM busybox:latest", f"RUN echo {uuid.uuid4().hex} > /token", *instructions]) + "\n"


def test_cache_mounts_chmod_platform_args_and_secrets_build(
    buildkit, docker_build, docker_run, write_context
):
    context = write_context(
        "modern",
        fresh(
            "ARG TARGETARCH",
            "COPY --chmod=0750 tool.sh /usr/local/bin/tool",
            "RUN --mount=type=cache,target=/var/cache/demo echo cached > /var/cache/demo/file && "
            'echo "$TARGETARCH" > /arch',
            "RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /token-length",
            'CMD ["sh", "-c", "stat -c %a /usr/local/bin/tool; cat /arch /token-length; ls /var/cache/demo 2>/dev/null | wc -l"]',
        ),
        {"tool.sh": "#!/bin/sh\necho tool\n", "token.txt": "s3cret"},
    )
    image = docker_build(context, secrets={"token": context / "token.txt"})

    container = docker_run(image)
    assert container.wait_exit(timeout=10) == 0
    mode, arch, length, cache_entries = container.logs().split()
    assert mode == "750"
    assert arch in ("amd64", "arm64", "arm", "386", "ppc64le", "s390x")  # the classic builder: empty
    assert length == "6"  # the secret was there while the step ran...
    assert cache_entries == "0"  # ...and the cache mount is not part of the image
    assert all("s3cret" not in row.created_by for row in image.history())


def test_platform_sets_the_target_platform_args(
    buildkit, docker_build, docker_run, docker_engine, write_context
):
    native = docker_engine.client.version()["Arch"]
    context = write_context("platform", fresh("ARG TARGETPLATFORM", 'RUN echo "$TARGETPLATFORM" > /platform'))
    image = docker_build(context, platform=f"linux/{native}")
    container = docker_run(image, command=["cat", "/platform"])
    assert container.wait_exit(timeout=10) == 0
    assert container.logs().strip() == f"linux/{native}"


def test_a_failing_step_is_a_build_error_with_a_debug_image_that_runs(
    buildkit, docker_build, docker_run, write_context
):
    context = write_context(
        "failing",
        "\n".join(
            [
                "FROM busybox:latest AS tools",
                f"RUN echo {uuid.uuid4().hex} > /token",
                "RUN echo prepared > /prepared",
                "ENV STAGE=tools",
                "RUN echo 'E: Unable to locate package ngin' && exit 100",
                "",
                "FROM busybox:latest",
                "COPY --from=tools /prepared /prepared",
            ]
        )
        + "\n",
    )
    with pytest.raises(BuildError) as caught:
        docker_build(context)  # the last stage needs the failing one

    error = caught.value
    assert error.step == 5  # as the Dockerfile counts: BuildKit's own progress says [tools 4/4]
    assert error.instruction == "RUN echo 'E: Unable to locate package ngin' && exit 100"
    assert error.exit_code == 100
    assert "E: Unable to locate package ngin" in error.log
    assert "failed at Step 5/7 : RUN echo 'E: Unable to locate package ngin'" in str(error)

    # The debug image: the failing stage built as far as the step before the failing one.
    assert error.last_image_id
    debug = docker_run(error.last_image_id, command=["sh", "-c", "cat /prepared; echo $STAGE"])
    assert debug.wait_exit(timeout=10) == 0
    assert debug.logs() == "prepared\ntools\n"


RECORD_STEPS = """
import json
import pathlib
import pytest

@pytest.mark.docker_image({context!r}, tag={tag!r})
def test_build(docker_image):
    steps = [[s.index, s.instruction, s.cached] for s in docker_image.steps]
    pathlib.Path("steps.json").write_text(json.dumps(steps))
"""


def test_the_next_session_builds_from_the_cache(buildkit, pytester, write_context, assert_no_leaks):
    """The session removes its images, but BuildKit's cache stays: the next session's build is
    all cache hits (and --no-build-cache runs every step again)."""
    context = write_context("cache", fresh("WORKDIR /app", "RUN echo two > two", "ENV DONE=1"))
    pytester.makepyfile(
        RECORD_STEPS.format(context=str(context), tag=f"pytest-dockerimg-it/bk:{uuid.uuid4().hex[:8]}")
    )

    def steps(*args: str) -> list[list[object]]:
        result = pytester.runpytest("-p", "no:cacheprovider", "--docker-builder", "buildkit", *args)
        result.assert_outcomes(passed=1)
        return json.loads((pytester.path / "steps.json").read_text())

    cold = steps()
    assert [(index, cached) for index, _, cached in cold] == [(1, True), (2, False), (3, False), (4, False)]
    warm = steps()
    assert [(index, cached) for index, _, cached in warm] == [(1, True), (2, True), (3, True), (4, True)]
    rebuilt = steps("--no-build-cache")
    assert [cached for _, _, cached in rebuilt[1:]] == [False, False, False]
    assert_no_leaks()


def test_a_syntax_line_is_refused_before_building(buildkit, docker_build, write_context):
    context = write_context("syntax", "# syntax=docker/dockerfile:1.7\nFROM busybox:latest\n")
    with pytest.raises(BuildError, match=r"line 1: `# syntax=docker/dockerfile:1.7` makes BuildKit pull"):
        docker_build(context)


def test_heredocs(buildkit, docker_build, docker_run, docker_engine, write_context):
    context = write_context("heredoc", fresh("RUN <<EOF", "echo from a heredoc > /said", "EOF"))
    if engine_major(docker_engine.version) < HEREDOC_ENGINE:
        with pytest.raises(BuildError, match=r"line 3: a heredoc .* does not read heredocs"):
            docker_build(context)
        pytest.skip(f"Docker Engine {docker_engine.version} builds no heredocs (refused, as checked)")
    container = docker_run(docker_build(context), command=["cat", "/said"])
    assert container.wait_exit(timeout=10) == 0
    assert container.logs() == "from a heredoc\n"


def older_clis() -> list[str]:
    """The docker CLIs here from before 23.0, whose own BuildKit builds with DOCKER_BUILDKIT=1."""
    found = []
    for path in candidate_clis(os.environ):
        done = subprocess.run(
            [path, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True, check=False
        )
        version = done.stdout.strip()
        if version[:1].isdigit() and engine_major(version) < 23:
            found.append(path)
    return found


@pytest.fixture
def made_images(docker_engine) -> Iterator[list[str]]:
    """Ids of images a test builds without the session's Builder, removed after it."""
    made: list[str] = []
    yield made
    for image_id in made:
        docker_engine.api.remove_image(image_id, noprune=True)


@pytest.fixture
def built_in_buildkit(docker_engine, engine_can) -> BuildKitBuilder:
    """BuildKit through an older CLI's own BuildKit (`DOCKER_BUILDKIT=1 docker build`, plain
    progress), not buildx."""
    engine_can("buildkit")
    clis = older_clis()
    if not clis:
        pytest.skip("no docker CLI before 23.0 here (Debian bookworm's docker.io installs one)")
    return BuildKitBuilder(docker_engine, Cli(clis[0], "20.10", buildx=None, rawjson=False))


def test_the_built_in_buildkit_of_an_older_cli_builds_and_fails_alike(
    built_in_buildkit, made_images, docker_engine, write_context
):
    context = write_context(
        "older",
        fresh(
            "ARG TARGETARCH",
            "COPY --chmod=0700 app.txt /app.txt",
            'RUN echo "$TARGETARCH" > /arch',
            "RUN exit 3",
        ),
        {"app.txt": "app\n"},
    )
    with pytest.raises(BuildFailed) as caught:
        built_in_buildkit.build(BuildSpec.create(context), nocache=False, pull=False, progress=None)
    made_images.extend(image.id for image in caught.value.made)
    error = caught.value.error
    assert (error.step, error.instruction, error.exit_code) == (6, "RUN exit 3", 3)
    assert error.last_image_id == caught.value.made[0].id
    debug = docker_engine.client.containers.run(
        error.last_image_id, ["sh", "-c", "stat -c %a /app.txt; cat /arch"], remove=True
    )
    assert debug.decode().split() == ["700", docker_engine.client.version()["Arch"]]


def test_auto_never_picks_a_cli_that_talks_to_another_engine(tmp_path, docker_engine):
    """The daemon ID that `docker info` gives must be the plugin's engine's: else classic, and the
    reason names each CLI it tried."""
    here = choose_builder("auto", docker_engine.client.info()["ID"], tmp_path / "here.json")
    if here.cli is None:
        pytest.skip(f"no docker CLI here builds with BuildKit at all: {here.reason}")
    choice = choose_builder("auto", "NOT:THE:ENGINE", tmp_path / "choice.json")
    assert choice.builder == "classic"
    assert choice.cli is None
    assert "talks to another engine" in choice.reason
    assert choose_builder("auto", "NOT:THE:ENGINE", tmp_path / "choice.json") == choice  # from the cache


def test_the_cli_reaches_an_ssh_engine_through_one_ssh_connection_of_the_plugin(buildkit, docker_engine):
    """Given `ssh://` itself, the docker CLI would start `ssh HOST docker system dial-stdio` (a
    handshake and a remote shell) for each of its connections, about ten a build. The plugin gives
    it a unix socket instead, whose connections are channels of one SSH connection; the socket goes
    with the engine. Every other engine: the CLI is given the engine's own address."""
    over_ssh = docker_engine.endpoint.startswith("ssh://")
    engine = connect()
    try:
        env = BuildKitBuilder(engine, buildkit).environment()
        if over_ssh:
            assert env["DOCKER_HOST"].startswith("unix://")
            assert "DOCKER_CONTEXT" not in env
        else:
            assert engine.cli_host() is None
            assert env.get("DOCKER_HOST") == os.environ.get("DOCKER_HOST")
        done = subprocess.run(
            [buildkit.path, "info", "--format", "{{.ID}}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.stdout.strip() == docker_engine.client.info()["ID"], done.stderr
    finally:
        engine.close()
    if over_ssh:
        assert not os.path.exists(env["DOCKER_HOST"].removeprefix("unix://"))
