"""Options, ini twins, the report header, and what happens when no engine answers."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from pytest_dockerimg.settings import OPTIONS

DOCKER_AND_PLAIN_TESTS = """
    def test_uses_docker(docker_engine):
        assert docker_engine.version

    def test_plain():
        assert 1 + 1 == 2
"""


def test_help_lists_every_option_with_its_ini_twin(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*--no-build-cache*",
            "*--docker-pull*",
            "*--keep-images*",
            "*--keep-containers*",
            "*--docker-required*",
            "*--docker-bind-host*",
            "*--docker-timeout*",
            "*--docker-stop-timeout*",
            "*--docker-registry-image*",
            "*--docker-registry-url*",
        ]
    )
    result.stdout.fnmatch_lines_random([f"  {option.ini} (string)*" for option in OPTIONS])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--docker-timeout", "soon"], "--docker-timeout: expected a number of seconds, got 'soon'"),
        (["--docker-bind-host", "my-laptop"], "--docker-bind-host: expected an IP address"),
        (["--docker-registry-url", "nowhere"], "--docker-registry-url: expected HOST:PORT"),
    ],
)
def test_a_bad_option_value_is_a_usage_error(pytester, args, message):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_a_bad_ini_value_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\ndocker_keep_containers = sometimes\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--keep-containers: expected one of never, failed, always, got 'sometimes'" in result.stderr.str()


def test_choices_are_checked_on_the_command_line(pytester):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--keep-containers", "sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "invalid choice: 'sometimes'" in result.stderr.str()


def test_the_header_names_engine_version_and_address(pytester, docker_engine):
    pytester.makepyfile(DOCKER_AND_PLAIN_TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    kind = "podman" if docker_engine.podman else "Docker engine"  # podman says "Docker API 1.44"
    result.stdout.fnmatch_lines(
        [
            "collected 2 items",
            f"docker: {kind} {docker_engine.version} (*API *) at {docker_engine.address}; "
            f"{docker_engine.reach.describe()}",
        ]
    )


def test_without_docker_tests_the_header_leaves_the_engine_alone(pytester, docker_engine):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "docker:" not in result.stdout.str()


def test_without_an_engine_docker_tests_are_skipped_with_the_reason(pytester, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    pytester.makepyfile(DOCKER_AND_PLAIN_TESTS)
    started = time.monotonic()
    result = pytester.runpytest("-rs")
    assert time.monotonic() - started < 10
    result.assert_outcomes(passed=1, skipped=1)
    reason = "no Docker engine answers at unix:///nonexistent/docker.sock: the socket does not exist"
    result.stdout.fnmatch_lines([f"docker: {reason}*will be skipped", f"SKIPPED*Docker: {reason}*"])


def test_docker_required_turns_the_skip_into_a_failure(pytester, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    pytester.makepyfile(DOCKER_AND_PLAIN_TESTS)
    result = pytester.runpytest("--docker-required")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*Docker is required (--docker-required), but no Docker engine answers at tcp://127.0.0.1:1*"]
    )


def test_an_engine_that_never_answers_does_not_hang_the_run(pytester, monkeypatch):
    # 192.0.2.0/24 is TEST-NET-1: nothing answers there, connections just time out.
    monkeypatch.setenv("DOCKER_HOST", "tcp://192.0.2.1:2375")
    pytester.makepyfile(
        DOCKER_AND_PLAIN_TESTS + "\n    def test_docker_again(docker_engine):\n        pass\n"
    )
    started = time.monotonic()
    result = pytester.runpytest("-rs")
    elapsed = time.monotonic() - started
    result.assert_outcomes(passed=1, skipped=2)
    assert elapsed < 12, f"a dead engine address cost {elapsed:.1f} s"
    result.stdout.fnmatch_lines(["*no Docker engine answers at tcp://192.0.2.1:2375*"])


def test_ini_options_apply(pytester, docker_engine):
    pytester.makeini("[pytest]\ndocker_bind_host = 0.0.0.0\ndocker_timeout = 7\n")
    pytester.makepyfile(
        """
        def test_binding(docker_run):
            container = docker_run("busybox:latest", command=["sleep", "60"], ports=["80"])
            binding = container.attrs["HostConfig"]["PortBindings"]["80/tcp"][0]
            assert binding["HostIp"] == "0.0.0.0"
            assert container.default_timeout == 7
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_docker_context_is_used_as_the_cli_uses_it(pytester, monkeypatch, tmp_path, docker_engine):
    """`DOCKER_CONTEXT` (or the CLI config's currentContext) names a context whose endpoint the
    plugin connects to, as `docker context use` makes the docker CLI do; the header says so."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"  # the engine under test
    digest = hashlib.sha256(b"under-test").hexdigest()
    meta = tmp_path / "contexts" / "meta" / digest / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"Name": "under-test", "Endpoints": {"docker": {"Host": host}}}))
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "under-test"}))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    pytester.makepyfile("def test_engine(docker_engine): assert docker_engine.version")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"docker: * at {host} (Docker context 'under-test' (from *config.json))*"])


def test_a_missing_context_skips_docker_tests_naming_it(pytester, monkeypatch, tmp_path):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONTEXT", "nowhere")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    pytester.makepyfile(DOCKER_AND_PLAIN_TESTS)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*Docker context 'nowhere' (from DOCKER_CONTEXT) does not exist*"])


def test_ssh_without_paramiko_says_which_extra_to_install(pytester, monkeypatch):
    """docker-py needs paramiko for ssh:// engines; without it, Docker tests are skipped with the
    install command (not an INTERNALERROR)."""
    monkeypatch.setenv("DOCKER_HOST", "ssh://nobody@127.0.0.1:1")
    pytester.makeconftest("import sys\nsys.modules['paramiko'] = None  # as if not installed\n")
    pytester.makepyfile(DOCKER_AND_PLAIN_TESTS)
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED*ssh:// engines need paramiko: pip install 'pytest-dockerimg?ssh?'*"]
    )


def test_reach_host_sets_where_ports_are_reached(pytester, docker_engine):
    """`--docker-reach-host ADDR` comes first: the header says so, and ports are reached there
    (bound on all interfaces, since ADDR is not loopback)."""
    pytester.makepyfile(
        """
        def test_reach(docker_engine, docker_settings):
            assert docker_engine.host == "192.0.2.7"
            assert docker_engine.reach.bind_host == "0.0.0.0"
        """
    )
    result = pytester.runpytest("--docker-reach-host", "192.0.2.7")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["docker: *; ports published on 0.0.0.0, reached at 192.0.2.7 (--docker-reach-host)"]
    )


def test_a_bad_reach_host_is_a_usage_error(pytester):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--docker-reach-host", "http://example.com:2375")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--docker-reach-host: expected a host name or an IP address*"])
