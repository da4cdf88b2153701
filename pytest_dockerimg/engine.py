"""The Docker engine connection: the client for the engine the docker CLI would use (see
`contexts`), a bounded availability probe, and where published ports are reached (see `reach`)."""

from __future__ import annotations

import importlib
import os
import socket
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import docker
import requests
from docker.errors import DockerException

from .contexts import ContextError, Endpoint, resolve_endpoint
from .errors import EngineUnavailable
from .reach import Reach, resolve
from .sshtunnel import SshTunnel

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
    context: str | None = None  # the Docker context it came from (with its TLS material), if any
    _tunnel: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _tunnel_lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

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

    def cli_host(self) -> str | None:
        """The `DOCKER_HOST` for a docker CLI that talks to this engine, when it should not use
        the engine's own address: for an ssh:// engine, the plugin's SSH tunnel (one connection
        for all the CLI's connections, see `sshtunnel`), opened at the first call. None: the
        engine's address (also when the tunnel cannot be opened: the CLI then uses its own ssh)."""
        if not self.endpoint.startswith("ssh://") or not hasattr(socket, "AF_UNIX"):
            return None
        with self._tunnel_lock:
            if "tunnel" not in self._tunnel:
                try:
                    self._tunnel["tunnel"] = SshTunnel(self.endpoint)
                except TRANSPORT_ERRORS:
                    self._tunnel["tunnel"] = None
            tunnel = self._tunnel["tunnel"]
        return tunnel.host if tunnel is not None else None

    def close(self) -> None:
        with self._tunnel_lock:
            tunnel = self._tunnel.pop("tunnel", None)
        if tunnel is not None:
            tunnel.close()
        self.client.close()


PROVISIONAL_API = "1.24"  # docker-py's minimum; replaced by the engine's own at once


def client_for(
    endpoint: Endpoint, env: Mapping[str, str], timeout: int
) -> tuple[docker.DockerClient, dict[str, Any]]:
    """A docker-py client of `endpoint`: DOCKER_HOST's (with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH
    from `env`), or a context's, with that context's TLS material; and the engine's `/version`."""
    if endpoint.address.startswith("ssh://"):
        try:
            importlib.import_module("paramiko")
        except ImportError:
            raise EngineUnavailable(endpoint.address, SSH_EXTRA) from None
    # The API version is asked for below, once the client trusts the engine's CA.
    if endpoint.context is None:  # DOCKER_HOST (with DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) or the socket
        client = docker.DockerClient.from_env(
            environment={**env, "DOCKER_HOST": endpoint.address}, timeout=timeout, version=PROVISIONAL_API
        )
    else:
        client = docker.DockerClient(
            base_url=endpoint.address, tls=endpoint.tls or False, timeout=timeout, version=PROVISIONAL_API
        )
    if isinstance(client.api.verify, str):
        # requests lets REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE (set on many company machines) win
        # over a session's own CA file: the engine's certificate is signed by its own CA.
        client.api.trust_env = False
    answer: dict[str, Any] = client.api.version(api_version=False)
    client.api._version = str(answer["ApiVersion"])  # type: ignore[attr-defined]
    _PODMAN[client.api] = names_podman(answer)
    return client, answer


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
        client, info = client_for(endpoint, env, int(max(1, probe_timeout)))
        reach = resolve(endpoint.address, endpoint.why, client, reach_host, bind_host)
    except TRANSPORT_ERRORS as error:
        raise EngineUnavailable(endpoint.address, explain(error)) from error
    client.api.timeout = api_timeout  # type: ignore[assignment]  # requests takes floats
    address = endpoint.address if endpoint.context is None else f"{endpoint.address} ({endpoint.why})"
    return Engine(
        client=client,
        address=address,
        version=str(info.get("Version", "unknown")),
        api_version=str(info.get("ApiVersion", "unknown")),
        reach=reach,
        endpoint=endpoint.address,
        context=endpoint.context,
    )
