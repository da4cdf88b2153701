"""The Docker engine connection: the client for the engine the docker CLI would use (see
`contexts`), a bounded availability probe, and where published ports are reached (see `reach`)."""

from __future__ import annotations

import importlib
import os
import socket
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import docker
import requests
from docker.errors import DockerException

from .contexts import ContextError, Endpoint, resolve_endpoint
from .errors import EngineUnavailable
from .reach import Reach, resolve

PROBE_TIMEOUT = 3.0
SSH_EXTRA = "ssh:// engines need paramiko: pip install 'pytest-dockerimg[ssh]'"


def _transport_errors() -> tuple[type[BaseException], ...]:
    """What a failed connection raises: docker-py's and requests' errors, OS errors, and for
    ssh:// paramiko's (an unknown host key, a refused channel), which are none of those."""
    errors: tuple[type[BaseException], ...] = (DockerException, requests.RequestException, OSError)
    try:
        paramiko = importlib.import_module("paramiko")
    except ImportError:
        return errors
    return (*errors, paramiko.SSHException)


TRANSPORT_ERRORS = _transport_errors()


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
        if "not found in known_hosts" in str(cause):
            return (
                f"{cause}: the ssh host key is unknown; add it to ~/.ssh/known_hosts "
                "(ssh-keyscan HOST >> ~/.ssh/known_hosts, or ssh HOST once)"
            )
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


def names_podman(version: Mapping[str, Any]) -> bool:
    """Whether an engine's `/version` answer is podman's (its Docker-compatible API names a
    "Podman Engine" component)."""
    return any("podman" in str(part.get("Name", "")).lower() for part in version.get("Components") or [])


_PODMAN: weakref.WeakKeyDictionary[docker.APIClient, bool] = weakref.WeakKeyDictionary()


def is_podman(api: docker.APIClient) -> bool:
    """Whether `api` talks to podman (asked once per client; False while the engine does not
    answer). Where podman's compatible API acts unlike Docker's, the plugin acts for it."""
    known = _PODMAN.get(api)
    if known is None:
        try:
            known = _PODMAN[api] = names_podman(api.version())
        except TRANSPORT_ERRORS:
            return False
    return known


@dataclass(frozen=True)
class Engine:
    """A connected Docker engine. `host` is where ports published on all interfaces are reached;
    `reach` says how and why (see `pytest_dockerimg.reach`)."""

    client: docker.DockerClient
    address: str
    version: str
    api_version: str
    reach: Reach
    endpoint: str = ""  # the address alone, as DOCKER_HOST takes it (`address` may name a context)

    @property
    def host(self) -> str:
        return self.reach.host

    @property
    def local(self) -> bool:
        """True when the engine's loopback is this machine's (not a remote engine)."""
        return not self.reach.remote

    @property
    def api(self) -> docker.APIClient:
        """docker-py's low-level client, for streamed builds, pushes and pulls."""
        return self.client.api

    @property
    def podman(self) -> bool:
        """True for podman's Docker-compatible API."""
        return is_podman(self.api)

    def describe(self) -> str:
        if self.podman:
            return f"podman {self.version} (Docker API {self.api_version}) at {self.address}"
        return f"Docker engine {self.version} (API {self.api_version}) at {self.address}"

    def close(self) -> None:
        self.client.close()


def _client(endpoint: Endpoint, env: Mapping[str, str], timeout: int) -> docker.DockerClient:
    if endpoint.address.startswith("ssh://"):
        try:
            importlib.import_module("paramiko")
        except ImportError:
            raise EngineUnavailable(endpoint.address, SSH_EXTRA) from None
    if endpoint.context is None:  # DOCKER_HOST (with DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) or the socket
        return docker.DockerClient.from_env(
            environment={**env, "DOCKER_HOST": endpoint.address}, timeout=timeout
        )
    return docker.DockerClient(base_url=endpoint.address, tls=endpoint.tls or False, timeout=timeout)


def connect(
    environ: Mapping[str, str] | None = None,
    *,
    probe_timeout: float = PROBE_TIMEOUT,
    api_timeout: float = 60.0,
    reach_host: str | None = None,
    bind_host: str | None = None,
) -> Engine:
    """Connect to the engine the docker CLI would use, or raise `EngineUnavailable` within about
    `probe_timeout` seconds; work out where its published ports are reached. Every later call is
    bounded by `api_timeout` seconds."""
    env = dict(os.environ if environ is None else environ)
    try:
        endpoint = resolve_endpoint(env)
    except ContextError as error:
        raise EngineUnavailable("the current Docker context", str(error)) from None
    try:
        client = _client(endpoint, env, int(max(1, probe_timeout)))
        info = client.version()
        reach = resolve(endpoint.address, endpoint.why, client, reach_host, bind_host)
    except TRANSPORT_ERRORS as error:
        raise EngineUnavailable(endpoint.address, explain(error)) from error
    client.api.timeout = api_timeout  # type: ignore[assignment]  # requests takes floats
    _PODMAN[client.api] = names_podman(info)
    address = endpoint.address if endpoint.context is None else f"{endpoint.address} ({endpoint.why})"
    return Engine(
        client=client,
        address=address,
        version=str(info.get("Version", "unknown")),
        api_version=str(info.get("ApiVersion", "unknown")),
        reach=reach,
        endpoint=endpoint.address,
    )
