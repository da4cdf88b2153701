"""The Docker engine connection: client from the environment, a bounded availability probe, and
the host where published ports are reached (unix socket -> 127.0.0.1; tcp/ssh -> that host)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

import docker
import requests
from docker.errors import DockerException

from .errors import EngineUnavailable

DEFAULT_ADDRESS = "unix:///var/run/docker.sock"
PROBE_TIMEOUT = 3.0

_LOOPBACK_NAMES = {"", "localhost", "0.0.0.0", "::", "127.0.0.1", "::1"}


def engine_address(environ: Mapping[str, str] | None = None) -> str:
    """The engine address as the docker CLI would use it: `DOCKER_HOST`, else the default socket."""
    env = os.environ if environ is None else environ
    return env.get("DOCKER_HOST", "").strip() or DEFAULT_ADDRESS


def published_host(address: str) -> str:
    """Where ports published by the engine at `address` are reached from this machine."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.scheme in ("unix", "npipe", "http+unix", "fd"):
        return "127.0.0.1"
    host = parsed.hostname or ""
    # Name 127.0.0.1, not localhost: a client dialling localhost may try ::1 first and reach
    # a different (IPv6) port mapping, or nothing.
    return "127.0.0.1" if host in _LOOPBACK_NAMES else host


def is_local(address: str) -> bool:
    """True when the engine runs on this machine, so a binding's host IP is reachable as-is."""
    return published_host(address) in ("127.0.0.1", socket.gethostname())


def _causes(error: BaseException) -> list[BaseException]:
    """The error and everything behind it: causes, contexts and exceptions carried in args
    (requests and urllib3 wrap the OS error two levels down, inside tuples)."""
    found: list[BaseException] = []
    pending: list[object] = [error]
    while pending:
        item = pending.pop(0)
        if isinstance(item, (tuple, list)):
            pending.extend(item)
        elif isinstance(item, BaseException) and all(item is not seen for seen in found):
            found.append(item)
            pending.extend([*item.args, item.__cause__, item.__context__])
    return found


def explain(error: BaseException) -> str:
    """A short, human reason for a failed connection, from the innermost useful cause."""
    for cause in _causes(error):
        if isinstance(cause, FileNotFoundError):
            return "the socket does not exist (is dockerd running?)"
        if isinstance(cause, PermissionError):
            return "permission denied on the socket (run as root or join the docker group)"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is dockerd listening there?)"
        if isinstance(cause, (socket.timeout, TimeoutError, requests.Timeout)):
            return f"no answer within {PROBE_TIMEOUT:g} s"
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


@dataclass(frozen=True)
class Engine:
    """A connected Docker engine."""

    client: docker.DockerClient
    address: str
    host: str
    version: str
    api_version: str
    local: bool

    @property
    def api(self) -> docker.APIClient:
        """docker-py's low-level client, for streamed builds, pushes and pulls."""
        return self.client.api

    def describe(self) -> str:
        return f"Docker engine {self.version} (API {self.api_version}) at {self.address}"

    def close(self) -> None:
        self.client.close()


def connect(
    environ: Mapping[str, str] | None = None,
    *,
    probe_timeout: float = PROBE_TIMEOUT,
    api_timeout: float = 60.0,
) -> Engine:
    """Connect to the engine named by the environment, or raise `EngineUnavailable` within
    about `probe_timeout` seconds. Every later call is bounded by `api_timeout` seconds."""
    env = dict(os.environ if environ is None else environ)
    address = engine_address(env)
    try:
        client = docker.DockerClient.from_env(environment=env, timeout=int(max(1, probe_timeout)))
        info = client.version()
    except (DockerException, requests.RequestException, OSError) as error:
        raise EngineUnavailable(address, explain(error)) from error
    client.api.timeout = api_timeout  # type: ignore[assignment]  # requests takes floats
    return Engine(
        client=client,
        address=address,
        host=published_host(address),
        version=str(info.get("Version", "unknown")),
        api_version=str(info.get("ApiVersion", "unknown")),
        local=is_local(address),
    )
