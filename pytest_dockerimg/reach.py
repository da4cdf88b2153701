"""Where published ports are reached from the test process, and where they bind: decided once
per session, in this order:

1. `--docker-reach-host ADDR`: there (ports bind on all interfaces unless ADDR is loopback);
2. a remote engine (tcp/ssh address that is not this machine, from `DOCKER_HOST` or a context):
   that host, ports bound on all its interfaces (its loopback is not reachable from here);
3. the test process inside a container of the same engine (dev container, CI job with the socket
   mounted), found out by asking the engine, never from `/.dockerenv`: containers are reached at
   their address on a network shared with that container (the bind host does not matter);
4. loopback: 127.0.0.1, ports bound there too (a test service must not face the network).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import docker
import requests
from docker.errors import DockerException

from .labels import container_key

LOOPBACK = "127.0.0.1"
# Engine addresses that name this machine (a client dialling 0.0.0.0 reaches the local host).
_THIS_MACHINE = {"", "localhost", "0.0.0.0", "::"}
_CONTAINER_ID = re.compile(r"\b([0-9a-f]{64})\b")
_DEFAULT_HOSTNAME = re.compile(r"^[0-9a-f]{12}$")


@dataclass(frozen=True)
class Reach:
    """The session's answer. `host`: where ports published on all interfaces are reached;
    `bind_host`: the interface for ports that name none; `remote`: the engine's loopback is not
    this machine's; `network`: set when containers are reached at their own address on that
    network (shared with `own_container`, the test process's container); `container`: the
    `labels.container_key` of the container the tests run in, if any; `why`: for the header."""

    host: str
    bind_host: str
    why: str
    remote: bool = False
    network: str | None = None
    own_container: str | None = None
    container: str = ""

    def describe(self) -> str:
        if self.network:
            return f"containers reached on network {self.network} ({self.why})"
        return f"ports published on {self.bind_host}, reached at {self.host} ({self.why})"


def address_host(address: str) -> str | None:
    """The host of a tcp/ssh/http engine address, None for a socket or pipe."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.scheme in ("unix", "npipe", "http+unix", "fd"):
        return None
    return parsed.hostname or ""


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (not for the wildcards 0.0.0.0 and ::)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_remote(address: str) -> bool:
    """True when the engine at `address` runs on another host (its loopback is not ours)."""
    host = address_host(address)
    return (
        host is not None
        and host not in _THIS_MACHINE
        and not is_loopback(host)
        and host != socket.gethostname()
    )


def local_addresses() -> set[str]:
    """This process's IP addresses (read from /proc: works in minimal containers)."""
    found: set[str] = set()
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
    except OSError:
        lines = []
    for previous, line in zip(lines, lines[1:]):
        if "/32 host LOCAL" in line:
            found.add(previous.split()[-1])
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            found.add(str(ipaddress.ip_address(int(raw, 16))))
    except (OSError, ValueError, IndexError):
        pass
    return {address for address in found if not is_loopback(address)}


def _ids_in(path: str) -> list[str]:
    try:
        return _CONTAINER_ID.findall(Path(path).read_text())
    except OSError:
        return []


def container_candidates() -> list[tuple[str, bool]]:
    """Ids or names that may be this process's container, each with whether our own cgroup
    names it: ids in the cgroup path, ids in the mount table (Docker mounts /etc/hostname from
    /var/lib/docker/containers/<id>/; a host's table also lists its containers' mounts), then the
    hostname (Docker's default hostname is the short id). Only the engine can confirm one."""
    candidates = [(found, True) for found in dict.fromkeys(_ids_in("/proc/self/cgroup"))]
    seen = {found for found, _ in candidates}
    candidates += [
        (found, False) for found in dict.fromkeys(_ids_in("/proc/self/mountinfo")) if found not in seen
    ]
    hostname = socket.gethostname()
    if _DEFAULT_HOSTNAME.match(hostname):
        candidates.append((hostname, False))
    return candidates


def own_container(client: docker.DockerClient) -> dict[str, Any] | None:
    """The engine's record of the container this process runs in, or None: a candidate counts
    when the engine knows it as a running container whose addresses are this process's, or
    that our own cgroup names and that shares the host's network."""
    mine = local_addresses()
    for candidate, from_cgroup in container_candidates():
        try:
            attrs = client.api.inspect_container(candidate)
        except (DockerException, requests.RequestException):
            continue
        if not (attrs.get("State") or {}).get("Running"):
            continue
        networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
        addresses = {
            address
            for network in networks.values()
            for address in (network.get("IPAddress"), network.get("GlobalIPv6Address"))
            if address
        }
        if addresses & mine or (from_cgroup and _network_mode(attrs) == "host"):
            return dict(attrs)
    return None


def _network_mode(attrs: dict[str, Any]) -> str:
    return str((attrs.get("HostConfig") or {}).get("NetworkMode") or "")


def shared_network(attrs: dict[str, Any]) -> tuple[str, str] | None:
    """The network (name, gateway) through which the container `attrs` reaches others: its own
    network mode's network when it has an address there, else its first network with one."""
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    mode = _network_mode(attrs)
    preferred = "bridge" if mode == "default" else mode
    names = sorted(networks, key=lambda name: name != preferred)
    for name in names:
        if networks[name].get("IPAddress"):
            return name, str(networks[name].get("Gateway") or "")
    return None


def resolve(
    address: str, address_why: str, client: docker.DockerClient, reach_host: str | None, bind_host: str | None
) -> Reach:
    """Where the session reaches published ports (see the module docstring for the order)."""
    if reach_host:
        bind = bind_host or (LOOPBACK if is_loopback(reach_host) else "0.0.0.0")
        return Reach(
            host=LOOPBACK if is_loopback(reach_host) else reach_host,
            bind_host=bind,
            why="--docker-reach-host",
            remote=is_remote(address),
        )
    if is_remote(address):
        return Reach(
            host=str(address_host(address)),
            bind_host=bind_host or "0.0.0.0",
            why=f"remote engine, from {address_why}",
            remote=True,
        )
    attrs = own_container(client)
    if attrs is not None:
        name = str(attrs.get("Name", "")).lstrip("/") or str(attrs["Id"])[:12]
        if _network_mode(attrs) == "host":
            return Reach(
                LOOPBACK,
                bind_host or LOOPBACK,
                f"the tests run in container {name}, on the host's network",
                container=container_key(attrs),
            )
        shared = shared_network(attrs)
        if shared is not None:
            network, gateway = shared
            return Reach(
                host=gateway or LOOPBACK,
                bind_host=bind_host or LOOPBACK,
                why=f"the tests run in container {name} of this engine",
                network=network,
                own_container=str(attrs["Id"]),
                container=container_key(attrs),
            )
    return Reach(LOOPBACK, bind_host or LOOPBACK, "local engine")
