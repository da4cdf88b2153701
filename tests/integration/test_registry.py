"""A private registry on the real engine: `docker push` to it, read it back over the
distribution API, `docker pull` and run what was pushed; use a registry that already runs
(`--docker-registry-url`); failures that say what went wrong; nothing left behind.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from pytest_dockerimg import Image, RegistryError, wait
from pytest_dockerimg.cleanup import teardown
from pytest_dockerimg.ledger import Ledger
from pytest_dockerimg.registry import Registry

HTTPD_CONTEXT = Path(__file__).parent.parent / "data" / "httpd"
PAGE = "Hi, I am in your container\n"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def httpd(docker_build):
    """`docker build tests/data/httpd` (relative to this file)."""
    return docker_build("../data/httpd")


def test_push_list_pull_and_run(httpd, docker_registry, docker_engine, docker_run, engine_tags):
    """`push(image, "test/xyz", tag="v1")` tags and pushes the image; the registry lists it
    (`catalog()`, `tags()`) and serves its manifest; `pull(ref)` brings it back and it runs."""
    ref = docker_registry.push(httpd, "test/xyz", tag="v1")

    assert docker_registry.address.startswith("127.0.0.1:")
    assert ref == f"{docker_registry.address}/test/xyz:v1"
    assert "test/xyz" in docker_registry.catalog()
    assert docker_registry.tags("test/xyz") == ["v1"]
    assert docker_registry.tags("test/nothing-here") == []

    # The distribution API serves the manifest of the image: the image id is its config digest
    # (Docker's classic image store) or its own digest (the containerd image store).
    manifest = docker_registry.manifest("test/xyz", "v1")
    assert manifest["mediaType"] == MANIFEST_V2
    raw = requests.get(
        f"{docker_registry.url}/v2/test/xyz/manifests/v1", headers={"Accept": MANIFEST_V2}, timeout=5
    )
    assert raw.status_code == 200
    assert raw.headers["Content-Type"] == MANIFEST_V2
    assert raw.headers["Docker-Content-Digest"].startswith("sha256:")
    assert raw.json() == manifest
    assert httpd.id in (manifest["config"]["digest"], raw.headers["Docker-Content-Digest"])

    # `docker rmi` the pushed tag (only that tag: the built image and its layers stay).
    docker_engine.client.images.remove(ref, noprune=True)
    assert ref not in engine_tags()

    pulled = docker_registry.pull(ref)
    assert isinstance(pulled, Image)
    assert pulled.id == httpd.id
    assert ref in pulled.tags
    web = docker_run(pulled, ports=["80"], wait=wait.http(80))
    assert requests.get(web.url(80), timeout=5).text == PAGE


def test_docker_cli_pulls_what_was_pushed(httpd, docker_registry, docker_engine, engine_tags):
    """What the plugin pushed is an ordinary registry image: `docker pull` fetches it too."""
    ref = docker_registry.push(httpd, "test/cli", tag="v1")
    docker_engine.client.images.remove(ref, noprune=True)

    try:
        pulled = subprocess.run(["docker", "pull", ref], capture_output=True, text=True, timeout=60)
        assert pulled.returncode == 0, pulled.stderr
        assert docker_engine.client.images.get(ref).id == httpd.id
        assert docker_engine.client.images.get(ref).id == httpd.id
    finally:
        subprocess.run(["docker", "rmi", "--no-prune", ref], capture_output=True, timeout=60)
    assert ref not in engine_tags()


def test_push_without_a_repository_uses_the_tag_the_image_was_built_with(docker_build, docker_registry):
    """`push(image)` names the pushed repository after the tag the image was built with
    (`image.ref`), even when the same image carries other tags too; the pushed tag is `latest`."""
    other = docker_build("../data/httpd", tag="pytest-dockerimg-it/aaa-other:v1")
    image = docker_build("../data/httpd", tag="pytest-dockerimg-it/named:v7")
    assert image.id == other.id  # same Dockerfile, same layers: one image with two tags
    assert image.ref == "pytest-dockerimg-it/named:v7"

    ref = docker_registry.push(image)

    assert ref == f"{docker_registry.address}/pytest-dockerimg-it/named:latest"
    assert docker_registry.tags("pytest-dockerimg-it/named") == ["latest"]


def registry_containers_of_this_process(docker_engine) -> set[str]:
    """Running `registry:2` containers that pytest sessions of this process started."""
    owner = f"owner={os.getpid()},"
    return {
        c.id
        for c in docker_engine.client.containers.list()
        # By image id, not with an `ancestor=` filter: podman's does not match Docker Hub names.
        if c.attrs["Image"] == docker_engine.client.images.get("registry:2").id
        and owner in c.labels.get("pytest-dockerimg", "")
    }


def test_an_existing_registry_given_by_url(pytester, docker_run, docker_engine, engine_tags):
    """`--docker-registry-url HOST:PORT` makes `docker_registry` use a registry that runs
    already: the session pushes there and starts no registry of its own."""
    # Where the tests run in a container, the registry must face the engine's host's network: the
    # session reads it at that host (its gateway), as it would read any registry on that host.
    interface = "0.0.0.0" if docker_engine.reach.network else docker_engine.reach.bind_host
    registry = docker_run("registry:2", ports={5000: (interface, None)}, wait=wait.http(5000, "/v2/"))
    address = f"127.0.0.1:{registry.port(5000)}"
    repository = f"test/existing-{uuid.uuid4().hex[:8]}"
    before = registry_containers_of_this_process(docker_engine)
    assert registry.id in before
    pytester.makepyfile(
        f"""
        import os

        def test_push_to_the_existing_registry(docker_build, docker_registry, docker_engine):
            assert docker_registry.address == {address!r}
            assert docker_registry.container is None
            ref = docker_registry.push(docker_build({str(HTTPD_CONTEXT)!r}), {repository!r}, tag="v1")
            assert ref == {address!r} + "/" + {repository!r} + ":v1"
            assert {repository!r} in docker_registry.catalog()

            # No registry container started since the outer test looked (same process: the
            # inner session's containers carry this pid as their owner, too).
            running = {{
                c.id
                for c in docker_engine.client.containers.list()
                if c.attrs["Image"] == docker_engine.client.images.get("registry:2").id
                and "owner=%d," % os.getpid() in c.labels.get("pytest-dockerimg", "")
            }}
            assert running == {before!r}
        """
    )
    result = pytester.runpytest("--docker-registry-url", address)
    result.assert_outcomes(passed=1)

    catalog = requests.get(registry.url(5000, "/v2/_catalog"), timeout=5).json()["repositories"]
    assert repository in catalog
    assert registry.status == "running"  # the session did not stop a registry it did not start
    assert f"{address}/{repository}:v1" not in engine_tags()  # its pushed tag is gone


def test_pull_keeps_a_local_tag_that_the_session_did_not_create(
    pytester, docker_run, docker_engine, engine_tags
):
    """The plugin removes only what it created: pulling a ref that was already local (pushed
    with the docker CLI before the session) leaves that tag in place after the session."""
    interface = "0.0.0.0" if docker_engine.reach.network else docker_engine.reach.bind_host  # as above
    registry = docker_run("registry:2", ports={5000: (interface, None)}, wait=wait.http(5000, "/v2/"))
    address = f"127.0.0.1:{registry.port(5000)}"
    ref = f"{address}/test/mine:v1"
    docker_engine.api.tag("busybox:latest", f"{address}/test/mine", "v1")  # `docker tag`, by hand
    try:
        pushed = subprocess.run(["docker", "push", ref], capture_output=True, text=True, timeout=60)
        assert pushed.returncode == 0, pushed.stderr
        pytester.makepyfile(
            f"""
            def test_pull_what_is_there_already(docker_registry):
                assert {ref!r} in docker_registry.pull({ref!r}).tags
            """
        )
        result = pytester.runpytest("--docker-registry-url", address)
        result.assert_outcomes(passed=1)
        assert ref in engine_tags(), "the session removed a tag it did not create"
    finally:
        subprocess.run(["docker", "rmi", "--no-prune", ref], capture_output=True, timeout=60)


def test_an_unreachable_registry_url_fails_fast_naming_the_address(pytester):
    """`--docker-registry-url` with nothing listening there is a setup error within seconds,
    naming the address."""
    pytester.makepyfile(
        """
        def test_needs_a_registry(docker_registry):
            pass
        """
    )
    started = time.monotonic()
    result = pytester.runpytest("--docker-registry-url", "127.0.0.1:1")
    elapsed = time.monotonic() - started

    result.assert_outcomes(errors=1)
    # The engine's 127.0.0.1: read here at the engine's host (this machine's loopback, or a
    # remote engine's address).
    result.stdout.fnmatch_lines(["*RegistryError: no registry answers at http://*:1: *"])
    assert elapsed < 15


def test_failed_push_raises_registry_error_with_the_engines_message(httpd, docker_engine, engine_tags):
    """docker-py reports a failed push in the stream; `push` raises `RegistryError` with the
    engine's message instead of returning a ref that does not exist."""
    ledger = Ledger()
    dead = Registry(docker_engine, "127.0.0.1:1", "http://127.0.0.1:1", ledger)
    try:
        with pytest.raises(RegistryError) as excinfo:
            dead.push(httpd, "test/dead", tag="v1")
        message = str(excinfo.value)
        assert "push of 127.0.0.1:1/test/dead:v1 to the registry at 127.0.0.1:1 failed" in message
        assert "connection refused" in message  # the engine's own words
    finally:
        assert teardown(docker_engine.api, [ledger]).problems == []
    assert "127.0.0.1:1/test/dead:v1" not in engine_tags()


def test_nothing_is_left_behind_after_the_session(pytester, docker_engine, assert_no_leaks):
    """A session that used `docker_registry`, pushed and pulled leaves no registry container, no
    registry volume and no pushed or pulled tag."""
    pytester.makepyfile(
        f"""
        import requests
        from pytest_dockerimg import wait

        def test_push_pull_run(docker_build, docker_registry, docker_engine, docker_run):
            assert docker_registry.container is not None
            assert docker_registry.container.status == "running"
            ref = docker_registry.push(docker_build({str(HTTPD_CONTEXT)!r}), "test/leak", tag="v1")
            docker_engine.client.images.remove(ref, noprune=True)
            web = docker_run(docker_registry.pull(ref), ports=["80"], wait=wait.http(80))
            assert requests.get(web.url(80)).ok
            with open("registry.txt", "w") as out:
                out.write(docker_registry.container.id)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)

    registry_id = (pytester.path / "registry.txt").read_text()
    assert docker_engine.client.containers.list(all=True, filters={"id": registry_id}) == []
    assert_no_leaks()


def test_pull_of_an_unknown_ref_raises_registry_error(docker_registry):
    """Pulling what the registry does not have raises `RegistryError` with the engine's message."""
    ref = f"{docker_registry.address}/test/never-pushed:v1"
    with pytest.raises(RegistryError, match=r"pull of .*never-pushed:v1 .* failed: .*(not found|unknown)"):
        docker_registry.pull(ref)


def test_manifest_of_an_unknown_tag_raises_registry_error(docker_registry):
    """Asking for a manifest the registry does not have raises `RegistryError` naming it."""
    with pytest.raises(RegistryError, match="has no manifest for test/never-pushed:v1"):
        docker_registry.manifest("test/never-pushed", "v1")


def test_registry_volume_is_labelled(docker_registry, docker_engine, reached_at):
    """The registry's storage is a volume of its own, labelled as the plugin's."""
    mounts = docker_registry.container.attrs["Mounts"]
    storage = [m for m in mounts if m["Destination"] == "/var/lib/registry"]
    assert len(storage) == 1
    assert storage[0]["Type"] == "volume"
    volume = docker_engine.client.volumes.get(storage[0]["Name"])
    assert "pytest-dockerimg" in volume.attrs["Labels"]
    host, port = reached_at(docker_registry.container, 5000)
    assert docker_registry.url == f"http://{host}:{port}"


def test_the_registry_stays_on_ipv4_loopback_whatever_the_bind_host(pytester, engine_can):
    """The engine pushes to 127.0.0.1 (an insecure registry it accepts by default), so the
    registry binds there even when tests publish their ports on another interface."""
    engine_can("loopback")
    pytester.makepyfile(
        f"""
        def test_push(docker_build, docker_registry, docker_run):
            assert docker_registry.address.startswith("127.0.0.1:")
            docker_registry.push(docker_build({str(HTTPD_CONTEXT)!r}), "test/v6", tag="v1")
            assert docker_registry.tags("test/v6") == ["v1"]
            web = docker_run("busybox:latest", command=["sleep", "60"], ports=["80"])
            assert web.attrs["HostConfig"]["PortBindings"]["80/tcp"][0]["HostIp"] == "::1"
        """
    )
    pytester.runpytest("--docker-bind-host", "::1").assert_outcomes(passed=1)


def test_digest_is_what_the_engine_recorded_and_pulls_by_digest(
    httpd, docker_registry, docker_engine, docker_run
):
    """`digest(repository, tag)` is the manifest digest the registry serves (the one `docker
    push` printed, in the image's RepoDigests); `pull("ADDRESS/repo@sha256:...")` fetches exactly
    that image, which runs; the digest reference goes at the end of the session."""
    ref = docker_registry.push(httpd, "test/by-digest", tag="v1")
    digest = docker_registry.digest("test/by-digest", "v1")

    assert digest.startswith("sha256:")
    by_digest = f"{docker_registry.address}/test/by-digest@{digest}"
    assert by_digest in docker_engine.client.images.get(ref).attrs["RepoDigests"]

    docker_engine.client.images.remove(ref, noprune=True)  # `docker rmi` the pushed tag
    pulled = docker_registry.pull(by_digest)
    assert pulled.id == httpd.id
    web = docker_run(pulled, ports=["80"], wait=wait.http(80))
    assert requests.get(web.url(80), timeout=5).text == PAGE


def test_digest_of_an_unknown_tag_raises_registry_error(docker_registry):
    with pytest.raises(RegistryError, match="no manifest for test/nothing-here:v9"):
        docker_registry.digest("test/nothing-here", "v9")
