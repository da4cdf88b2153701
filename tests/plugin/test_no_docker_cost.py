"""A run with no Docker test pays nothing for the plugin: docker-py, requests, urllib3 and
tenacity stay unimported, no engine is contacted (not even for the header), no watcher is spawned
and no signal handler installed, with --collect-only and under xdist too. The inner sessions run
in subprocesses, so that what the outer session imported does not count."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

# Every inner process (controller and xdist workers) appends what it sees at its very end.
PROBE_CONFTEST = """
import os
import signal
import sys
from pathlib import Path

def watchers_of(owner):
    found = 0
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().split(b"\\0")
        except OSError:
            continue
        found += any(b"sweep_owner" in arg for arg in args) and str(owner).encode() in args
    return found

def pytest_unconfigure(config):
    heavy = [m for m in ("docker", "requests", "urllib3", "tenacity") if m in sys.modules]
    handler = "default" if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL else "installed"
    with open(os.environ["PROBE_REPORT"], "a") as out:
        out.write(f"heavy={','.join(heavy) or 'none'} sigterm={handler} watchers={watchers_of(os.getpid())}\\n")
"""

PLAIN_TESTS = """
import pytest

@pytest.mark.parametrize("n", range(20))
def test_arithmetic(n):
    assert n + n == 2 * n

def test_plain():
    assert "docker" not in "plain"
"""

DOCKER_TEST = """
def test_uses_docker(docker_engine):
    pass
"""


class FakeEngine:
    """A unix socket posing as the engine (DOCKER_HOST points at it): it counts who connects,
    and hangs up, so that a plugin that asks for the engine finds none."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="dockerimg-fake-", dir="/tmp")  # short: sun_path
        self.path = str(Path(self.folder) / "docker.sock")
        self.connections = 0
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._server.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def fake_engine(monkeypatch) -> Iterator[FakeEngine]:
    engine = FakeEngine()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine.path}")
    yield engine
    engine.close()


@pytest.fixture
def probe(pytester, monkeypatch) -> Path:
    """The file the inner processes report to, one line each."""
    report = pytester.path / "probe.txt"
    monkeypatch.setenv("PROBE_REPORT", str(report))
    pytester.makeconftest(PROBE_CONFTEST)
    return report


@pytest.mark.parametrize("args", [[], ["--collect-only"], ["-n", "2"]], ids=["run", "collect-only", "xdist"])
def test_a_run_without_docker_tests_imports_connects_spawns_and_installs_nothing(
    pytester, fake_engine, probe, args
):
    pytester.makepyfile(PLAIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.OK
    lines = probe.read_text().splitlines()
    assert len(lines) == (3 if "-n" in args else 1)  # the controller and both workers report
    assert set(lines) == {"heavy=none sigterm=default watchers=0"}
    assert fake_engine.connections == 0
    assert "docker:" not in result.stdout.str()  # no header line: the engine was not asked


def test_a_run_with_a_docker_test_loads_docker_when_it_needs_it(pytester, fake_engine, probe):
    """The same probes see Docker used when a test asks for it (so they can fail)."""
    pytester.makepyfile(test_plain=PLAIN_TESTS, test_docker=DOCKER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=21, skipped=1)
    assert probe.read_text().splitlines() == [
        "heavy=docker,requests,urllib3,tenacity sigterm=default watchers=0"
    ]
    assert fake_engine.connections >= 1
    result.stdout.fnmatch_lines([f"docker: no Docker engine answers at unix://{fake_engine.path}*"])


def test_a_docker_test_gets_the_watcher_and_the_sigterm_handler(pytester, probe, docker_engine):
    pytester.makepyfile(test_plain=PLAIN_TESTS, test_docker=DOCKER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=22)
    heavy, sigterm, watchers = probe.read_text().split()
    assert "docker" in heavy
    assert sigterm == "sigterm=installed"
    assert watchers == "watchers=1"
