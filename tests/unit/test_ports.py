"""Port specs: every `docker run -p` form and docker-py dicts become explicit bindings; no
binding is left on all interfaces unless asked for."""

from __future__ import annotations

import pytest

from pytest_dockerimg.errors import InvalidSpec
from pytest_dockerimg.ports import PortBinding, exposed_bindings, parse_ports, to_docker_py

LOOPBACK = "127.0.0.1"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", [PortBinding(80, "tcp", LOOPBACK, None)]),
        ("8080:80", [PortBinding(80, "tcp", LOOPBACK, 8080)]),
        ("127.0.0.1:8080:80", [PortBinding(80, "tcp", "127.0.0.1", 8080)]),
        ("127.0.0.1::80", [PortBinding(80, "tcp", "127.0.0.1", None)]),
        ("0.0.0.0::80", [PortBinding(80, "tcp", "0.0.0.0", None)]),
        ("53/udp", [PortBinding(53, "udp", LOOPBACK, None)]),
        ("5353:53/udp", [PortBinding(53, "udp", LOOPBACK, 5353)]),
        ("[::1]:8080:80", [PortBinding(80, "tcp", "::1", 8080)]),
        ("[::1]::80", [PortBinding(80, "tcp", "::1", None)]),
        (
            "8000-8001:80-81",
            [PortBinding(80, "tcp", LOOPBACK, 8000), PortBinding(81, "tcp", LOOPBACK, 8001)],
        ),
        ("80-81", [PortBinding(80, "tcp", LOOPBACK, None), PortBinding(81, "tcp", LOOPBACK, None)]),
    ],
)
def test_docker_run_p_forms(spec, expected):
    assert parse_ports([spec], LOOPBACK) == expected


def test_a_single_string_is_one_spec():
    assert parse_ports("8080:80", LOOPBACK) == [PortBinding(80, "tcp", LOOPBACK, 8080)]


def test_the_bind_host_applies_only_where_no_interface_is_named():
    bindings = parse_ports(["80", "127.0.0.1::443"], "0.0.0.0")
    assert [b.host_ip for b in bindings] == ["0.0.0.0", "127.0.0.1"]


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ({80: None}, [PortBinding(80, "tcp", LOOPBACK, None)]),
        ({"80/tcp": 8080}, [PortBinding(80, "tcp", LOOPBACK, 8080)]),
        ({"443/tcp": 8443}, [PortBinding(443, "tcp", LOOPBACK, 8443)]),
        ({5000: ("127.0.0.1", None)}, [PortBinding(5000, "tcp", "127.0.0.1", None)]),
        ({5000: ("0.0.0.0",)}, [PortBinding(5000, "tcp", "0.0.0.0", None)]),
        ({"53/udp": "5353"}, [PortBinding(53, "udp", LOOPBACK, 5353)]),
        (
            {80: [8080, ("127.0.0.1", 8081)]},
            [PortBinding(80, "tcp", LOOPBACK, 8080), PortBinding(80, "tcp", "127.0.0.1", 8081)],
        ),
    ],
)
def test_docker_py_dicts(ports, expected):
    assert parse_ports(ports, LOOPBACK) == expected


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        (["eighty"], "port spec 'eighty' is not a docker run -p form"),
        (["70000"], "container port 70000 is outside 1-65535"),
        (["localhost:8080:80"], "is not a docker run -p form"),
        (["999.1.1.1::80"], "host interface '999.1.1.1' is not an IP address"),
        (["8000-8002:80-81"], "the host range and the container range differ in length"),
        (["81-80"], "range 81-80 runs backwards"),
        (["80/http"], "unknown protocol 'http'"),
        ({"http": None}, "expected a container port"),
        ({80: True}, "True is not a host port"),
        ({80: {"HostPort": "1"}}, "a binding is None, a host port"),
        ([3.5], "use strings"),
        (80, "give a list of strings"),
    ],
)
def test_malformed_specs_name_the_spec(ports, message):
    with pytest.raises(InvalidSpec, match=message.replace("(", r"\(")):
        parse_ports(ports, LOOPBACK)


def test_publish_all_binds_every_exposed_port_to_the_bind_host():
    assert exposed_bindings(["80/tcp", "53/udp"], LOOPBACK) == [
        PortBinding(80, "tcp", LOOPBACK, None),
        PortBinding(53, "udp", LOOPBACK, None),
    ]


def test_docker_py_form_groups_bindings_per_port():
    bindings = parse_ports(["80", "8080:80", "53/udp"], LOOPBACK)
    assert to_docker_py(bindings) == {
        "80/tcp": [(LOOPBACK, None), (LOOPBACK, 8080)],
        "53/udp": [(LOOPBACK, None)],
    }
