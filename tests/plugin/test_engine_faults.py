"""An engine that freezes in the middle of a session: the affected test fails in bounded time
with a message naming the engine and what the plugin was doing, the rest of the run and
pytest's summary go on, and teardown does not crash. The engine is the real one, reached over a
TCP proxy that this test can freeze."""

from __future__ import annotations

import os
import time

import pytest

from pytest_dockerimg.cleanup import remove_container
from pytest_dockerimg.labels import ALL, Mark


@pytest.fixture
def frozen_engine_proxy(pytester, docker_engine, engine_proxy, monkeypatch):
    proxy = engine_proxy(freeze_file=pytester.path / "freeze")
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{proxy.port}")
    yield proxy
    outer = os.getpid()
    for container in docker_engine.api.containers(all=True, filters=ALL):
        mark = Mark.of(container.get("Labels"))
        if mark is not None and mark.owner == outer and container["Names"][0].startswith("/test_"):
            remove_container(docker_engine.api, container["Id"])  # the session may be at it too


def test_a_frozen_engine_fails_the_test_in_bounded_time_and_the_run_goes_on(pytester, frozen_engine_proxy):
    pytester.makepyfile(
        """
        import pathlib

        def test_before(docker_run):
            docker_run("busybox:latest", command=["sleep", "30"])

        def test_engine_freezes(docker_run):
            pathlib.Path("freeze").touch()
            docker_run("busybox:latest", command=["sleep", "30"])

        def test_after_without_docker():
            pass
        """
    )
    started = time.monotonic()
    result = pytester.runpytest("-p", "no:cacheprovider", "--docker-api-timeout", "2")
    elapsed = time.monotonic() - started
    result.assert_outcomes(passed=2, failed=1)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            f"*the Docker engine at tcp://127.0.0.1:{frozen_engine_proxy.port} did not answer within 2 s "
            "(--docker-api-timeout) while the plugin was in *",
            "*1 failed, 2 passed*",
        ]
    )
    assert "INTERNALERROR" not in output
    assert elapsed < 120, f"a frozen engine must fail in bounded time, took {elapsed:.0f} s"
