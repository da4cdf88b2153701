"""Port publishing specs: every `docker run -p` string form and docker-py style dicts, normalised
to explicit bindings. A binding that names no host interface gets the session's bind host
(127.0.0.1 by default, not Docker's 0.0.0.0: a test service must not face the network)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import InvalidSpec

PROTOCOLS = ("tcp", "udp", "sctp")
_RANGE = r"\d+(?:-\d+)?"
_STRING_SPEC = re.compile(
    rf"^(?:(?:(?P<ip>\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(?P<host>{_RANGE})?:)?"
    rf"(?P<container>{_RANGE})(?:/(?P<proto>[a-z]+))?$"
)
_EXAMPLES = '"80", "8080:80", "127.0.0.1:8080:80", "127.0.0.1::80" or "53/udp"'


@dataclass(frozen=True)
class PortBinding:
    """Container port `port/protocol` published on `host_ip:host_port` (None: the engine picks)."""

    port: int
    protocol: str
    host_ip: str
    host_port: int | None

    @property
    def key(self) -> str:
        return f"{self.port}/{self.protocol}"


def _port_number(text: str | int, spec: object, what: str) -> int:
    try:
        number = int(text)
    except (TypeError, ValueError):
        raise InvalidSpec(f"port spec {spec!r}: {what} {text!r} is not a port number") from None
    if not 0 < number < 65536:
        raise InvalidSpec(f"port spec {spec!r}: {what} {number} is outside 1-65535")
    return number


def _port_range(text: str, spec: object, what: str) -> list[int]:
    first, _, last = text.partition("-")
    start = _port_number(first, spec, what)
    end = _port_number(last, spec, what) if last else start
    if end < start:
        raise InvalidSpec(f"port spec {spec!r}: {what} range {text} runs backwards")
    return list(range(start, end + 1))


def _host_ip(text: str, spec: object) -> str:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        raise InvalidSpec(f"port spec {spec!r}: host interface {text!r} is not an IP address") from None


def _protocol(text: str | None, spec: object) -> str:
    protocol = (text or "tcp").lower()
    if protocol not in PROTOCOLS:
        raise InvalidSpec(f"port spec {spec!r}: unknown protocol {protocol!r} (use tcp, udp or sctp)")
    return protocol


def parse_string(spec: str, bind_host: str) -> list[PortBinding]:
    """`docker run -p` forms: `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`, `53/udp`,
    `[::1]:8080:80` and equal-length ranges such as `8000-8001:80-81`."""
    match = _STRING_SPEC.match(spec.strip())
    if not match:
        raise InvalidSpec(f"port spec {spec!r} is not a docker run -p form; use {_EXAMPLES}")
    protocol = _protocol(match["proto"], spec)
    container_ports = _port_range(match["container"], spec, "container port")
    host_ip = _host_ip(match["ip"], spec) if match["ip"] else bind_host
    host_ports: list[int | None] = [None] * len(container_ports)
    if match["host"]:
        fixed = _port_range(match["host"], spec, "host port")
        if len(fixed) != len(container_ports):
            raise InvalidSpec(f"port spec {spec!r}: the host range and the container range differ in length")
        host_ports = list(fixed)
    return [
        PortBinding(port, protocol, host_ip, host_port)
        for port, host_port in zip(container_ports, host_ports)
    ]


def _dict_key(key: object) -> tuple[int, str]:
    text = str(key).strip()
    port, _, protocol = text.partition("/")
    if isinstance(key, bool) or not port.isdigit():
        raise InvalidSpec(f'port key {key!r}: expected a container port such as 80, "80" or "53/udp"')
    return _port_number(port, key, "container port"), _protocol(protocol or None, key)


def _dict_value(key: object, value: object, bind_host: str) -> list[tuple[str, int | None]]:
    """docker-py binding values: None, 8080, "8080", ("127.0.0.1", 8080), ("127.0.0.1", None),
    ("127.0.0.1",) or a list of these."""
    spec = {key: value}
    if isinstance(value, list):
        return [binding for item in value for binding in _dict_value(key, item, bind_host)]
    if value is None:
        return [(bind_host, None)]
    if isinstance(value, bool):
        raise InvalidSpec(f"port spec {spec!r}: {value!r} is not a host port")
    if isinstance(value, (int, str)):
        return [(bind_host, _port_number(value, spec, "host port"))]
    if isinstance(value, tuple) and len(value) in (1, 2) and isinstance(value[0], str):
        host_port = value[1] if len(value) == 2 else None
        port = None if host_port is None else _port_number(host_port, spec, "host port")
        return [(_host_ip(value[0], spec), port)]
    raise InvalidSpec(
        f"port spec {spec!r}: a binding is None, a host port, (host_ip, host_port or None) or a list"
    )


def parse_ports(
    ports: str | Iterable[str] | Mapping[object, object] | None, bind_host: str
) -> list[PortBinding]:
    """Every accepted `ports=` value, as explicit bindings."""
    if ports is None:
        return []
    if isinstance(ports, str):
        return parse_string(ports, bind_host)
    if isinstance(ports, Mapping):
        bindings = []
        for key, value in ports.items():
            port, protocol = _dict_key(key)
            bindings += [
                PortBinding(port, protocol, ip, host_port)
                for ip, host_port in _dict_value(key, value, bind_host)
            ]
        return bindings
    if isinstance(ports, Iterable):
        bindings = []
        for item in ports:
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str):
                raise InvalidSpec(f"port spec {item!r}: use strings such as {_EXAMPLES}, or a dict")
            bindings += parse_string(item, bind_host)
        return bindings
    raise InvalidSpec(f"ports={ports!r}: give a list of strings such as {_EXAMPLES}, or a dict")


def netloc(host: str, port: int) -> str:
    """`host:port` for a URL, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def exposed_bindings(exposed: Iterable[str], bind_host: str) -> list[PortBinding]:
    """`-P`: every EXPOSEd port (`"80/tcp"`) on a random host port of the bind host."""
    return [PortBinding(*_dict_key(port), bind_host, None) for port in exposed]


def to_docker_py(bindings: Iterable[PortBinding]) -> dict[str, list[tuple[str, int | None]]]:
    """docker-py's `ports=` argument for `containers.create`."""
    result: dict[str, list[tuple[str, int | None]]] = {}
    for binding in bindings:
        pairs = result.setdefault(binding.key, [])
        if (binding.host_ip, binding.host_port) not in pairs:
            pairs.append((binding.host_ip, binding.host_port))
    return result
