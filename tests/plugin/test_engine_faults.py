"""An engine that freezes in the middle of a session: the affected test fails in bounded time
with a message naming the engine and what the plugin was doing, the rest of the run and
pytest's summary go on, and teardown does not crash. The engine is the real one, reached over a
TCP proxy that this test can freeze."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from pytest_dockerimg.cleanup import remove_container
from pytest_dockerimg.labels import ALL, Mark


class FreezableProxy:
    """127.0.0.1:PORT -> the engine's `unix://` or plain `tcp://` address; `frozen` stops all
    traffic, as a hung dockerd would (connections stay open, nothing answers)."""

    def __init__(self, address: str, freeze_file: Path) -> None:
        self.address = urllib.parse.urlparse(address)
        self.freeze_file = freeze_file
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def frozen(self) -> bool:
        return self.freeze_file.exists()

    def _serve(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.address.scheme == "unix":
                engine = socket.socket(socket.AF_UNIX)
                engine.connect(self.address.path)
            else:
                engine = socket.create_connection((self.address.hostname, self.address.port))
            for source, target in ((client, engine), (engine, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while self.frozen and not self.closed:
                    time.sleep(0.05)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed = True
        self.server.close()


@pytest.fixture
def frozen_engine_proxy(pytester, docker_engine, monkeypatch):
    address = docker_engine.cli_host() or docker_engine.endpoint  # ssh://: the plugin's own tunnel
    if not address.startswith(("unix://", "tcp://")) or docker_engine.api.base_url.startswith("https"):
        pytest.skip(f"the freezable proxy forwards plain HTTP to unix:// or tcp://, not to {address}")
    proxy = FreezableProxy(address, pytester.path / "freeze")
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{proxy.port}")
    yield proxy
    proxy.close()
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
