"""`--docker-builder {auto,buildkit,classic}`: the header names the builder and why, a bad value
is a usage error listing the choices, and the classic builder refuses BuildKit-only syntax
naming the line and how to get BuildKit."""

from __future__ import annotations

import pytest

BUILD_MODERN = """
import pytest

@pytest.mark.docker_image("modern")
def test_build(docker_image):
    pass
"""


def test_an_unknown_builder_is_a_usage_error_listing_the_choices(pytester):
    result = pytester.runpytest("--docker-builder", "kaniko")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--docker-builder: invalid choice: 'kaniko' (choose from *auto*buildkit*classic*)"]
    )


def test_an_unknown_builder_in_the_ini_file_is_a_usage_error_too(pytester):
    pytester.makeini("[pytest]\ndocker_builder = kaniko\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--docker-builder: expected one of auto, buildkit, classic, got 'kaniko'"])


def test_the_header_names_the_classic_builder_and_why(pytester, docker_engine):
    pytester.makepyfile("def test_engine(docker_engine):\n    pass\n")  # the header needs a Docker test
    result = pytester.runpytest("--docker-builder", "classic")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["docker builder: classic (the engine API): --docker-builder classic"])


def test_auto_names_its_choice_once_it_has_been_made(pytester, docker_engine):
    """A session that builds says which builder it chose and why; the next session's header
    knows it (the probe result is cached) without running the docker CLI."""
    (pytester.mkdir("modern") / "Dockerfile").write_text("FROM busybox:latest\nRUN true\n")
    pytester.makepyfile(BUILD_MODERN)
    first = pytester.runpytest("-p", "no:cacheprovider")
    first.assert_outcomes(passed=1)
    second = pytester.runpytest("-p", "no:cacheprovider")
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["docker builder: * auto*"])
    assert "chosen at the first build" not in second.stdout.str()


def test_the_classic_builder_refuses_buildkit_syntax_naming_the_line(pytester, docker_engine):
    modern = pytester.mkdir("modern")
    (modern / "Dockerfile").write_text(
        "FROM busybox:latest\nARG TARGETARCH\nRUN --mount=type=cache,target=/c echo $TARGETARCH\n"
    )
    pytester.makepyfile(BUILD_MODERN)
    result = pytester.runpytest("-p", "no:cacheprovider", "--docker-builder", "classic")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*the Dockerfile uses syntax that only BuildKit builds, and this session builds with the classic builder:",
            "*Dockerfile line 2: the platform argument TARGETARCH (BuildKit sets it; the classic builder leaves it empty)",
            "*Dockerfile line 3: `RUN --mount` (the classic builder rejects it)",
            "*hint: build with BuildKit: pytest --docker-builder buildkit*",
        ]
    )


def test_buildkit_on_podman_is_refused_saying_why(pytester, docker_engine):
    """podman's Docker-compatible API builds with buildah: `--docker-builder buildkit` fails the
    build saying so (the CLI itself would only say "failed to dial gRPC")."""
    if not docker_engine.podman:
        pytest.skip(f"podman only: the engine is {docker_engine.describe()}")
    (pytester.mkdir("modern") / "Dockerfile").write_text("FROM busybox:latest\nRUN true\n")
    pytester.makepyfile(BUILD_MODERN)
    result = pytester.runpytest("-p", "no:cacheprovider", "--docker-builder", "buildkit")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*--docker-builder buildkit, but *talks to podman, whose API builds with buildah*"]
    )
