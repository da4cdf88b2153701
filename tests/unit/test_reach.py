"""Which engine the plugin talks to (as the docker CLI chooses it) and where ports are reached."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pytest_dockerimg.contexts import DEFAULT_ADDRESS, ContextError, resolve_endpoint
from pytest_dockerimg.reach import address_host, is_remote, resolve


def write_context(config: Path, name: str, host: str, *, tls: bool = False) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(
        json.dumps({"Name": name, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}})
    )
    if tls:
        folder = config / "contexts" / "tls" / digest / "docker"
        folder.mkdir(parents=True)
        for part in ("ca", "cert", "key"):
            (folder / f"{part}.pem").write_text("")


def test_without_anything_set_the_default_socket_is_used(tmp_path):
    endpoint = resolve_endpoint({"HOME": str(tmp_path)})
    assert (endpoint.address, endpoint.context) == (DEFAULT_ADDRESS, None)


def test_docker_host_wins_over_every_context(tmp_path):
    write_context(tmp_path, "remote", "tcp://10.0.0.9:2375")
    endpoint = resolve_endpoint(
        {"DOCKER_HOST": "tcp://10.0.0.1:2375", "DOCKER_CONTEXT": "remote", "DOCKER_CONFIG": str(tmp_path)}
    )
    assert (endpoint.address, endpoint.why) == ("tcp://10.0.0.1:2375", "DOCKER_HOST")


def test_docker_context_names_the_context_to_use(tmp_path):
    write_context(tmp_path, "colima", "unix:///home/me/.colima/default/docker.sock")
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "other"}))
    endpoint = resolve_endpoint({"DOCKER_CONTEXT": "colima", "DOCKER_CONFIG": str(tmp_path)})
    assert endpoint.address == "unix:///home/me/.colima/default/docker.sock"
    assert endpoint.why == "Docker context 'colima' (from DOCKER_CONTEXT)"


def test_the_cli_configs_current_context_is_used_otherwise(tmp_path):
    config = tmp_path / ".docker"
    write_context(config, "build-box", "ssh://ci@build.example.com")
    (config / "config.json").write_text(json.dumps({"currentContext": "build-box"}))
    endpoint = resolve_endpoint({"HOME": str(tmp_path)})
    assert (endpoint.address, endpoint.context) == ("ssh://ci@build.example.com", "build-box")


def test_the_context_named_default_is_the_default_socket(tmp_path):
    assert resolve_endpoint({"DOCKER_CONTEXT": "default", "HOME": str(tmp_path)}).address == DEFAULT_ADDRESS


def test_a_context_with_tls_material_connects_with_it(tmp_path):
    write_context(tmp_path, "secure", "tcp://10.0.0.5:2376", tls=True)
    endpoint = resolve_endpoint({"DOCKER_CONTEXT": "secure", "DOCKER_CONFIG": str(tmp_path)})
    assert endpoint.tls is not None
    assert endpoint.tls.cert is not None
    assert endpoint.tls.cert[0].endswith("cert.pem")


def test_a_missing_context_is_named_in_the_error(tmp_path):
    with pytest.raises(ContextError, match=r"Docker context 'gone' \(from DOCKER_CONTEXT\) does not exist"):
        resolve_endpoint({"DOCKER_CONTEXT": "gone", "DOCKER_CONFIG": str(tmp_path)})


@pytest.mark.parametrize(
    ("address", "host", "remote"),
    [
        ("unix:///var/run/docker.sock", None, False),
        ("npipe:////./pipe/docker_engine", None, False),
        ("tcp://127.0.0.1:2375", "127.0.0.1", False),
        ("tcp://localhost:2375", "localhost", False),
        ("tcp://10.1.2.3:2376", "10.1.2.3", True),
        ("ssh://deploy@build.example.com", "build.example.com", True),
    ],
)
def test_an_engine_on_another_host_is_remote(address, host, remote):
    assert address_host(address) == host
    assert is_remote(address) is remote


def test_a_remote_engines_ports_are_reached_at_its_host_and_bound_on_all_its_interfaces():
    reach = resolve("tcp://10.1.2.3:2375", "DOCKER_HOST", client=None, reach_host=None, bind_host=None)
    assert (reach.host, reach.bind_host, reach.remote) == ("10.1.2.3", "0.0.0.0", True)
    assert "remote engine, from DOCKER_HOST" in reach.describe()


def test_the_reach_host_option_comes_first():
    reach = resolve("tcp://10.1.2.3:2375", "DOCKER_HOST", client=None, reach_host="10.9.9.9", bind_host=None)
    assert (reach.host, reach.bind_host, reach.why) == ("10.9.9.9", "0.0.0.0", "--docker-reach-host")
    on_loopback = resolve(DEFAULT_ADDRESS, "", client=None, reach_host="localhost", bind_host=None)
    assert (on_loopback.host, on_loopback.bind_host) == ("127.0.0.1", "127.0.0.1")


def test_an_asked_bind_host_is_kept():
    reach = resolve("tcp://10.1.2.3:2375", "DOCKER_HOST", client=None, reach_host=None, bind_host="10.1.2.3")
    assert reach.bind_host == "10.1.2.3"
