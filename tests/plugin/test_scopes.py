"""`docker_run` at every scope (`docker_run`, `docker_run_class`, `docker_run_module`,
`docker_run_session`): each scope's containers live until that scope ends; and a failing test's
report carries the logs of the containers it used, of every scope, cut to a readable tail."""

from __future__ import annotations

import os

from pytest_dockerimg.labels import Mark

SCOPED_SUITE = {
    "test_a": """
import pytest

def exists(docker_engine, container_id):
    return bool(docker_engine.client.containers.list(all=True, filters={"id": container_id}))

@pytest.fixture(scope="module")
def module_box(docker_run_module):
    return docker_run_module("busybox:latest", command=["sleep", "300"])

@pytest.fixture(scope="class")
def class_box(docker_run_class):
    return docker_run_class("busybox:latest", command=["sleep", "300"])

class TestOne:
    def test_first(self, class_box, module_box, pytestconfig):
        pytestconfig.cache.set("ids/class", class_box.id)
        pytestconfig.cache.set("ids/module", module_box.id)

    def test_second_sees_the_same_containers(self, class_box, module_box, pytestconfig):
        assert class_box.id == pytestconfig.cache.get("ids/class", None)
        assert module_box.id == pytestconfig.cache.get("ids/module", None)

def test_after_the_class_its_container_is_gone(docker_engine, module_box, pytestconfig):
    assert not exists(docker_engine, pytestconfig.cache.get("ids/class", None))
    assert exists(docker_engine, module_box.id)
    assert module_box.id == pytestconfig.cache.get("ids/module", None)
""",
    "test_b": """
def test_after_the_module_its_container_is_gone(docker_engine, docker_run_session, pytestconfig):
    module_id = pytestconfig.cache.get("ids/module", None)
    assert module_id
    assert not docker_engine.client.containers.list(all=True, filters={"id": module_id})
    box = docker_run_session("busybox:latest", command=["sleep", "300"])
    pytestconfig.cache.set("ids/session", box.id)

def test_session_containers_live_on(docker_engine, pytestconfig):
    session_id = pytestconfig.cache.get("ids/session", None)
    assert docker_engine.client.containers.list(all=True, filters={"id": session_id})
""",
}


def test_each_scope_removes_its_containers_when_it_ends(pytester, assert_no_leaks):
    pytester.makepyfile(**SCOPED_SUITE)
    result = pytester.runpytest("-p", "cacheprovider")
    result.assert_outcomes(passed=5)
    assert "cleanup problem" not in result.stdout.str()
    assert_no_leaks()


def test_the_same_factory_at_every_scope(pytester):
    """One implementation, registered at each scope (as pytest-mock does)."""
    pytester.makepyfile(
        """
        def test_scopes(request):
            defs = {name: request._fixturemanager.getfixturedefs(name, request.node)[-1]
                    for name in ("docker_run", "docker_run_class", "docker_run_module", "docker_run_session")}
            assert {name: d.scope for name, d in defs.items()} == {
                "docker_run": "function", "docker_run_class": "class",
                "docker_run_module": "module", "docker_run_session": "session"}
            assert len({d.func for d in defs.values()}) == 1
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


REPORTED_SUITE = """
import pytest
from pytest_dockerimg import wait

@pytest.fixture(scope="module")
def database(docker_run_module):
    return docker_run_module("busybox:latest", command=["sh", "-c", "echo DATABASE-READY; exec sleep 300"])

@pytest.fixture(scope="session")
def cache(docker_run_session):
    return docker_run_session("busybox:latest", command=["sh", "-c", "echo CACHE-READY; exec sleep 300"])

def test_uses_the_database(database, cache, docker_run):
    database.wait_for(wait.log("READY"))
    cache.wait_for(wait.log("READY"))
    chatty = docker_run("busybox:latest", command=["sh", "-c", "seq 1 5000 | sed 's/^/line /'; exec sleep 300"])
    chatty.wait_for(wait.log("line 5000"))
    assert False, "the database said no"

def test_uses_nothing():
    assert False, "no containers here"
"""


def test_a_failure_reports_the_logs_of_the_containers_it_used_cut_to_a_tail(pytester, assert_no_leaks):
    """The failing test that used a module and a session container gets their logs; a function
    container that wrote 5000 lines is cut to its last 200, with a line saying how to see the
    rest. A failing test that used no container gets no docker section."""
    pytester.makepyfile(test_reported=REPORTED_SUITE)
    result = pytester.runpytest("-rA")
    result.assert_outcomes(failed=2)
    output = result.stdout.str()

    uses, nothing = output.split("test_uses_nothing", 1)[0], output.split("_ test_uses_nothing _", 1)[1]
    assert "DATABASE-READY" in uses
    assert "CACHE-READY" in uses
    result.stdout.fnmatch_lines(
        [
            "*- docker logs pytest-session-* -*",
            "CACHE-READY",
            "*- docker logs test_reported.py-* -*",
            "DATABASE-READY",
            "*- docker logs test_uses_the_database-* -*",
            "[[]log cut to its last 200 lines; to see all of it, run with --keep-containers failed, then:"
            " docker logs test_uses_the_database-*]",
            "line 4801",
        ]
    )
    assert "line 4800\n" not in output
    assert "docker logs" not in nothing.split("short test summary")[0]
    assert_no_leaks()


def test_with_kept_containers_the_cut_log_says_docker_logs(pytester, docker_engine):
    pytester.makepyfile(
        """
        from pytest_dockerimg import wait

        def test_chatty(docker_run):
            box = docker_run("busybox:latest", command=["sh", "-c", "seq 1 500; exec sleep 300"])
            box.wait_for(wait.log("500"))
            assert False
        """
    )
    result = pytester.runpytest("--keep-containers", "always")
    try:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["[[]log cut to its last 200 lines; all of it: docker logs test_chatty-*]"]
        )
    finally:
        for container in docker_engine.client.containers.list(all=True, filters={"name": "test_chatty-"}):
            mark = Mark.of(container.labels)
            if mark is not None and mark.owner == os.getpid():
                container.remove(force=True)
