"""The next test's container is started while the current test runs, when the markers say it
runs the same image the same way; it belongs to the next test, and nothing is left behind when
that test never runs. Containers that could collide (fixed host port, name) are not started
early."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

HTTPD_CONTEXT = Path(__file__).resolve().parent.parent / "data" / "httpd"

MARKED_MODULE = """
import pytest
from pytest_dockerimg import wait

pytestmark = [
    pytest.mark.docker_image({context!r}),
    pytest.mark.docker_container(ports=[{port!r}], wait=wait.http(80)),
]
"""


def marked_module(port: str = "80") -> str:
    return MARKED_MODULE.format(context=str(HTTPD_CONTEXT), port=port)


def test_the_next_tests_container_starts_while_the_current_test_runs(pytester, assert_no_leaks):
    token = uuid.uuid4().hex[:8]
    pytester.makepyfile(
        marked_module()
        + f"""
def test_first(docker_container, docker_engine):
    names = [c.name for c in docker_engine.client.containers.list(all=True)]
    assert any(name.startswith("test_second_{token}-") for name in names), names

def test_second_{token}(docker_container):
    assert docker_container.name.startswith("test_second_{token}-")
    assert docker_container.status == "running"
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["1 image(s), 2 container(s); *"])
    assert_no_leaks()


def test_a_container_started_for_a_test_that_never_runs_is_removed(pytester, assert_no_leaks):
    pytester.makepyfile(
        marked_module()
        + """
def test_first(docker_container):
    assert False, "stops the run (-x) while the next test's container starts"

def test_second(docker_container):
    pass
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-x")
    result.assert_outcomes(failed=1)
    assert_no_leaks()


def test_containers_on_a_fixed_host_port_are_not_started_early(pytester, assert_no_leaks):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pytester.makepyfile(
        marked_module(f"{port}:80")
        + """
import pytest

@pytest.mark.parametrize("n", range(3))
def test_fixed_port(docker_container, n):
    pass
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert_no_leaks()
