"""Networks on the real engine: containers that reach each other by alias on a network made by
`docker_network`, with no docker-py boilerplate; the network removed after its containers
whatever the fixture order, from other scopes too, under xdist, and after a SIGKILL.

The images are busybox: its httpd serves a page, its wget fetches it by alias.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import uuid

import pytest

from pytest_dockerimg import InvalidSpec, Network, wait
from pytest_dockerimg.labels import Identity, Mark, this_machine

PAGE = "Hi, I am in your container\n"


@pytest.fixture(scope="module")
def httpd(docker_build):
    return docker_build("../data/httpd")


def network_exists(docker_engine, name: str) -> bool:
    return bool(docker_engine.api.networks(names=[name]))


def test_containers_reach_each_other_by_alias(httpd, docker_run, docker_network):
    """`docker network create` + `docker run --network NET --network-alias web`: a second
    container on the network reaches the first as `web` (and by its container name)."""
    net = docker_network()
    web = docker_run(
        httpd, network=net, aliases=["web"], wait=wait.command(["wget", "-qO-", "http://127.0.0.1/"])
    )
    client = docker_run("busybox:latest", network=net.name, command=["sleep", "300"])

    assert client.exec(["wget", "-qO-", "http://web/"]).stdout == PAGE
    assert client.exec(["wget", "-qO-", f"http://{web.name}/"]).stdout == PAGE
    assert sorted(net.containers()) == sorted([web.name, client.name])


def test_a_network_is_labelled_and_can_be_internal(docker_network, docker_engine):
    """Networks carry the plugin's mark (kind `network`), so the watcher and the stale sweep
    find them; `internal=True` is `docker network create --internal`."""
    net = docker_network(internal=True)

    assert isinstance(net, Network)
    assert net.attrs["Internal"] is True
    assert net.attrs["Driver"] == "bridge"
    mark = Mark.of(net.attrs["Labels"])
    assert mark is not None
    assert mark.kind == "network"
    assert docker_engine.api.inspect_network(net.id)["Name"] == net.name


def test_a_named_network_keeps_its_name(docker_network):
    name = f"pytest-named-{uuid.uuid4().hex[:8]}"
    assert docker_network(name).name == name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"aliases": ["db"]}, "aliases= needs network="),
        ({"network": "no-such-network-here"}, "network 'no-such-network-here' does not exist"),
        ({"network": 42}, "network= takes a Network or a network name"),
        ({"network": "bridge", "aliases": "db"}, "aliases= takes a list of names"),
    ],
    ids=["aliases-alone", "unknown-network", "not-a-network", "aliases-string"],
)
def test_bad_network_arguments_say_what_to_do(docker_run, kwargs, message):
    with pytest.raises(InvalidSpec, match=message):
        docker_run("busybox:latest", command=["true"], **kwargs)


NETWORK_SUITE = """
import pathlib
import pytest

@pytest.fixture(scope="session")
def shared(docker_network_session):
    return docker_network_session()

def record(net):
    with open("networks.txt", "a") as out:
        out.write(net.name + "\\n")

@pytest.mark.parametrize("n", range({count}))
def test_network_requested_first(docker_network, docker_run, n):
    net = docker_network()
    record(net)
    docker_run("busybox:latest", network=net, aliases=["one"], command=["sleep", "300"])

@pytest.mark.parametrize("n", range({count}))
def test_network_requested_last(docker_run, docker_network, n):
    net = docker_network()
    record(net)
    docker_run("busybox:latest", network=net, command=["sleep", "300"])

@pytest.mark.parametrize("n", range({count}))
def test_session_network_with_function_containers(shared, docker_run, n):
    record(shared)
    docker_run("busybox:latest", network=shared, aliases=[f"c{{n}}"], command=["sleep", "300"])

def test_session_container_on_a_function_network(docker_network, docker_run_session):
    net = docker_network()
    record(net)
    docker_run_session("busybox:latest", network=net, command=["sleep", "300"])
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_networks_go_after_their_containers_without_errors(pytester, docker_engine, assert_no_leaks, xdist):
    """Whatever the fixture order, with containers removed in the background, a session network
    used by every test's containers, a session container on a test's network, and under xdist:
    every network is removed, and no removal fails ("has active endpoints")."""
    pytester.makepyfile(test_inner_networks=NETWORK_SUITE.format(count=3))
    result = pytester.runpytest(*xdist)

    result.assert_outcomes(passed=10)
    assert "cleanup problem" not in result.stdout.str()
    names = set((pytester.path / "networks.txt").read_text().split())
    assert len(names) >= 8  # 7 of the tests, and one session network per process (xdist: each worker)
    assert [name for name in names if network_exists(docker_engine, name)] == []
    assert_no_leaks()


SLEEPING_ON_A_NETWORK = """
import pathlib
import time

def test_sleeps_on_a_network(docker_network, docker_run):
    net = docker_network()
    docker_run("busybox:latest", network=net, aliases=["sleeper"], command=["sleep", "300"])
    pathlib.Path("network").write_text(net.name)
    time.sleep(120)
"""


def test_a_killed_sessions_network_is_removed_within_seconds(pytester, docker_engine, wait_until):
    """pytest killed with SIGKILL (no teardown runs): the watcher removes the container, then
    the network."""
    pytester.makepyfile(test_sleeper=SLEEPING_ON_A_NETWORK)
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_sleeper.py"],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        record = pytester.path / "network"
        assert wait_until(record.exists, timeout=60), "the inner test never started"
        name = record.read_text()
        assert network_exists(docker_engine, name)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert wait_until(lambda: not network_exists(docker_engine, name), timeout=20), (
            f"the watcher did not remove network {name} within 20 s"
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_kept_container_keeps_its_network(pytester, docker_engine):
    """`--keep-containers failed`: the failing test's container stays, still on its network (a
    network goes only once no container is on it)."""
    pytester.makepyfile(
        test_kept="""
        import pathlib

        def test_fails_on_a_network(docker_network, docker_run):
            net = docker_network()
            box = docker_run("busybox:latest", network=net, aliases=["kept"], command=["sleep", "300"])
            pathlib.Path("kept").write_text(f"{net.name} {box.id}")
            assert False
        """
    )
    result = pytester.runpytest("--keep-containers", "failed")
    name, container_id = (pytester.path / "kept").read_text().split()
    try:
        result.assert_outcomes(failed=1)
        assert "cleanup problem" not in result.stdout.str()
        networks = docker_engine.client.containers.get(container_id).attrs["NetworkSettings"]["Networks"]
        assert name in networks
        assert networks[name]["Aliases"][:1] == ["kept"]
    finally:
        docker_engine.client.containers.get(container_id).remove(force=True)
        docker_engine.api.remove_network(name)


def test_the_next_session_sweeps_a_dead_sessions_network(pytester, docker_engine):
    """A network whose session died with its watcher (labelled, owner process gone) is removed
    by the stale sweep of the next session on this machine, and the summary counts it."""
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    dead = Identity(uuid.uuid4().hex[:16], this_machine(), dead_pid.pid)
    name = f"pytest-dead-{uuid.uuid4().hex[:8]}"
    docker_engine.client.networks.create(name, labels=dead.labels("network"))
    try:
        pytester.makepyfile("def test_uses_docker(docker_run):\n    docker_run('busybox:latest')\n")
        result = pytester.runpytest()
        result.assert_outcomes(passed=1)
        # At least this one: other dead sessions of this machine may be swept at the same time.
        swept = re.search(
            r"removed what dead sessions left behind: .* (\d+) network\(s\)", result.stdout.str()
        )
        assert swept is not None
        assert int(swept[1]) >= 1
        assert not network_exists(docker_engine, name)
    finally:
        if network_exists(docker_engine, name):
            docker_engine.api.remove_network(name)
