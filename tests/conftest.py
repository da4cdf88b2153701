"""Shared test helpers: small busybox-based build contexts, Dockerfiles that no earlier run has
cached (whose layers this test session removes at its end: only its own, other runs of the suite
may share the engine), and a check that inner pytest sessions left nothing behind."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import subprocess
import textwrap
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import DockerException, ImageNotFound

from pytest_dockerimg import Engine
from pytest_dockerimg.cleanup import remove_image
from pytest_dockerimg.containers import Container
from pytest_dockerimg.labels import ALL, Mark
from pytest_dockerimg.ledger import Entry, Kind, Ledger
from pytest_dockerimg.plugin import SESSION_KEY
from pytest_dockerimg.tags import short_tag

HTTPD_DOCKERFILE = """\
FROM busybox:latest
RUN mkdir -p /www && echo 'Hi, I am in your container' > /www/index.html
EXPOSE 80
CMD ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]
"""


THROWAWAY = "PYTEST_DOCKERIMG_TESTS_THROWAWAY"
THIS_RUN = uuid.uuid4().hex  # the throwaway layers of this run of the suite, not of others
REAL_SSH = Path("~/.ssh").expanduser()


@pytest.fixture(autouse=True)
def ssh_config_for_inner_sessions(request: pytest.FixtureRequest) -> None:
    """pytester points HOME at a fresh folder, where an ssh:// engine's client (paramiko) would
    find no key and no known host: give inner sessions this user's ~/.ssh."""
    if "pytester" not in request.fixturenames or not os.environ.get("DOCKER_HOST", "").startswith("ssh://"):
        return
    pytester = request.getfixturevalue("pytester")
    if REAL_SSH.is_dir() and not (pytester.path / ".ssh").exists():
        (pytester.path / ".ssh").symlink_to(REAL_SSH)


def _fresh_dockerfile(*instructions: str, base: str = "busybox:latest") -> str:
    lines = [f"FROM {base}", f"ENV {THROWAWAY}={THIS_RUN}-{uuid.uuid4().hex}"]
    return "\n".join([*lines, *instructions]) + "\n"


def children_first(images: list[dict[str, object]]) -> list[str]:
    """Image ids ordered so that each comes before its parent (a parent cannot go first)."""
    parents = {str(image["Id"]): str(image.get("ParentId") or "") for image in images}

    def depth(image_id: str) -> int:
        steps = 0
        while parents.get(image_id) in parents:
            image_id = parents[image_id]
            steps += 1
        return steps

    return sorted(parents, key=depth, reverse=True)


@pytest.fixture
def fresh_dockerfile() -> Callable[..., str]:
    """`fresh_dockerfile(*instructions, base="busybox:latest")`: a Dockerfile that no earlier
    build has cached, with a new token in its second line. That line is an ENV: with either
    builder it changes the cache key of every later RUN, and with the classic builder every later
    layer inherits it, so `remove_throwaway_layers` finds the whole layer chain (the build cache
    the plugin keeps on purpose) and removes it at the end of the test session."""
    return _fresh_dockerfile


@pytest.fixture(scope="session", autouse=True)
def remove_throwaway_layers() -> Iterator[None]:
    """At the end of the test session, remove the layer chains of `fresh_dockerfile` builds:
    kept as build cache by the plugin, but never to be used again."""
    yield
    try:
        client = docker.from_env(timeout=30)
    except DockerException:
        return
    try:
        throwaway = []
        for image in client.api.images(all=True):
            try:
                env = (client.api.inspect_image(image["Id"]).get("Config") or {}).get("Env") or []
            except DockerException:
                continue
            if any(item.startswith(f"{THROWAWAY}={THIS_RUN}-") for item in env):
                throwaway.append(image)
        for image_id in children_first(throwaway):
            remove_image(client.api, image_id)
    finally:
        client.close()


@dataclass(frozen=True)
class Leftovers:
    """Containers, networks and volumes labelled by inner pytest sessions of this process
    (pytester runs them in-process, so their owner is this pid), the outer session's own left
    out; and the image tags in the engine (images carry no label: a tag left behind is what
    keeps a leaked image alive)."""

    containers: frozenset[str]
    networks: frozenset[str]
    volumes: frozenset[str]
    tags: frozenset[str]

    def as_dict(self) -> dict[str, set[str]]:
        return {
            "containers": set(self.containers),
            "networks": set(self.networks),
            "volumes": set(self.volumes),
            "tags": set(self.tags),
        }


@pytest.fixture
def inner_leftovers(
    request: pytest.FixtureRequest, docker_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], Leftovers]:
    """`inner_leftovers()`: what inner sessions of this process have left in the engine now.
    Tags are those the inner sessions' ledgers recorded (other runs on the same engine make
    tags too): one that still names the image an inner session put it on is left behind."""
    api = docker_engine.api
    outer = request.config.stash[SESSION_KEY]
    outer_session = outer.identity.session
    moved: list[Entry] = []
    record = Ledger.record

    def recording(ledger: Ledger, kind: Kind, ref: str, **options: Any) -> Entry:
        entry = record(ledger, kind, ref, **options)
        if kind == "tag" and ledger is not outer._ledger:
            moved.append(entry)
        return entry

    monkeypatch.setattr(Ledger, "record", recording)

    def tags() -> frozenset[str]:
        left = set()
        for entry in moved:
            try:
                now = api.inspect_image(entry.ref)["Id"]
            except ImageNotFound:
                now = ""
            if entry.keep_now:
                continue  # --keep-images asked for it
            if entry.previous != entry.image and now == entry.image:
                left.add(f"{entry.ref}@{now}")
            elif entry.previous and now != entry.previous:
                left.add(f"{entry.ref} not given back to {entry.previous}")
        return frozenset(left)

    def inner(labels: dict[str, str] | None) -> bool:
        mark = Mark.of(labels)
        return mark is not None and mark.owner == os.getpid() and mark.session != outer_session

    def take() -> Leftovers:
        return Leftovers(
            containers=frozenset(
                c["Id"] for c in api.containers(all=True, filters=ALL) if inner(c.get("Labels"))
            ),
            networks=frozenset(n["Id"] for n in api.networks(filters=ALL) if inner(n.get("Labels"))),
            volumes=frozenset(
                v["Name"] for v in api.volumes(filters=ALL).get("Volumes") or [] if inner(v.get("Labels"))
            ),
            tags=tags(),
        )

    return take


@pytest.fixture
def assert_no_leaks(inner_leftovers: Callable[[], Leftovers]) -> Callable[[], None]:
    """Call after running inner pytest sessions: fails if they left a container, a network, a
    volume or a tag behind, or moved a tag that was there before."""
    before = inner_leftovers()

    def check() -> None:
        after = inner_leftovers()
        leaked = {kind: found - before.as_dict()[kind] for kind, found in after.as_dict().items()}
        assert leaked == {"containers": set(), "networks": set(), "volumes": set(), "tags": set()}

    return check


@pytest.fixture
def engine_tags(docker_engine: Engine) -> Callable[[], set[str]]:
    """`engine_tags()`: every `REPOSITORY:TAG` in the engine now, as Docker names them (podman
    lists `localhost/NAME` and `docker.io/library/NAME`)."""
    api = docker_engine.api
    return lambda: {short_tag(tag) for image in api.images() for tag in image.get("RepoTags") or []}


def _wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """`wait_until(condition, timeout)`: poll until `condition()` is true; whether it became so
    (a bound on a wait, not a timing assert)."""
    return _wait_until


@pytest.fixture
def write_context(tmp_path: Path) -> Callable[..., Path]:
    """Write a build context folder under tmp_path: `write_context("web", dockerfile, {"a/b.txt": "..."})`."""

    def write(name: str, dockerfile: str = HTTPD_DOCKERFILE, files: dict[str, str] | None = None) -> Path:
        folder = tmp_path / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "Dockerfile").write_text(textwrap.dedent(dockerfile))
        for relative, content in (files or {}).items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        return folder

    return write


# ---------------------------------------------------------------------------- engine differences
# The suite runs against several engines (scripts/matrix.sh). A test asserts what must hold on
# every engine; where an engine cannot do something at all, the test is skipped with the reason
# (never silently), through `engine_can`.


def _limits(engine: Engine) -> dict[str, str | None]:
    """What each engine difference is, and why an engine lacks it (None: it has it)."""
    reach = engine.reach
    here = reach.describe()
    loopback = reach.host == "127.0.0.1" and reach.network is None and not reach.remote
    same_files = not reach.remote and reach.own_container is None
    return {
        # Published ports on this machine's 127.0.0.1: a process here can hold the same port.
        "loopback": None if loopback else f"published ports are not on this machine's loopback: {here}",
        # The engine reads this machine's paths (bind mounts of tmp_path) and reaches services
        # on its loopback (a git daemon on 127.0.0.1).
        "this_machine": None
        if same_files and loopback
        else f"the engine is not on the test's machine: {here}",
        "git_context": "podman cannot build from a git URL" if engine.podman else None,
        # podman's API builds with buildah: a BuildKit client gets "failed to dial gRPC: unable
        # to upgrade to h2c, received 404".
        "buildkit": "podman's API builds with buildah, not BuildKit" if engine.podman else None,
        # podman keeps an untagged image itself (its rmi of a last name takes the build cache
        # with it, so the plugin only untags there): no holder, and no old cache let go.
        "cache_holder": "podman keeps untagged build images itself" if engine.podman else None,
        # podman builds OCI images, which keep no HEALTHCHECK (and runs checks from systemd timers).
        "healthcheck": "podman's OCI images keep no HEALTHCHECK" if engine.podman else None,
        # Docker's userland proxy accepts on a published port before the service listens; it
        # serves loopback connections (others are NATed straight to the container).
        "userland_proxy": None
        if loopback and not engine.podman
        else f"no userland proxy between the test and the container: {here}",
    }


@pytest.fixture
def engine_can(docker_engine: Engine) -> Callable[[str], None]:
    """`engine_can("loopback")`: skip the test, saying why, when the engine under test cannot
    do that (the keys of `_limits`)."""

    def check(what: str) -> None:
        reason = _limits(docker_engine)[what]
        if reason is not None:
            pytest.skip(f"engine-specific ({what}): {reason}")

    return check


def reached_at(container: Container, port: int | str) -> tuple[str, int]:
    """Where a test must reach `port` of `container` on this engine: the published port at the
    engine's reach host, or the container's own address on the network shared with the tests."""
    reach = container.engine.reach
    if reach.network:
        return container.host, int(str(port).partition("/")[0])
    return reach.host, container.port(port)


@pytest.fixture(name="reached_at")
def reached_at_fixture() -> Callable[[Container, int | str], tuple[str, int]]:
    """`reached_at(container, 80)`: see `reached_at`."""
    return reached_at


class EngineProxy:
    """127.0.0.1:PORT -> the engine's `unix://` or plain `tcp://` address, in plain TCP or behind
    TLS (`tls`, a server context). `frozen` (while `freeze_file` exists) stops all traffic, as a hung dockerd would:
    connections stay open, nothing answers."""

    def __init__(
        self, address: str, freeze_file: Path | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        self.address = urllib.parse.urlparse(address)
        self.freeze_file = freeze_file
        self.tls = tls
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def frozen(self) -> bool:
        return self.freeze_file is not None and self.freeze_file.exists()

    def _serve(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(client,), daemon=True).start()

    def _connection(self, client: socket.socket) -> None:
        """One thread per connection pumps both ways (an SSL socket must not be read and written
        by two threads at once)."""
        engine: socket.socket | None = None
        try:
            if self.tls is not None:
                client = self.tls.wrap_socket(client, server_side=True)
            if self.address.scheme == "unix":
                engine = socket.socket(socket.AF_UNIX)
                engine.connect(self.address.path)
            else:
                engine = socket.create_connection((self.address.hostname, self.address.port))
            peer = {client: engine, engine: client}
            while not self.closed:
                ready, _, _ = select.select(list(peer), [], [], 0.5)
                for source in ready:
                    data = source.recv(65536)
                    while isinstance(source, ssl.SSLSocket) and source.pending():
                        data += source.recv(source.pending())
                    if not data:
                        return
                    while self.frozen and not self.closed:
                        time.sleep(0.05)
                    peer[source].sendall(data)
        except (OSError, ssl.SSLError):
            pass
        finally:
            for end in (client, engine):
                if end is not None:
                    with contextlib.suppress(OSError):
                        end.close()

    def close(self) -> None:
        self.closed = True
        self.server.close()


@pytest.fixture
def engine_proxy(docker_engine: Engine) -> Iterator[Callable[..., EngineProxy]]:
    """`engine_proxy(freeze_file=None, tls=None)`: a proxy to the local engine's socket (see
    `EngineProxy`), closed at the end of the test."""
    address = docker_engine.cli_host() or docker_engine.endpoint  # ssh://: the plugin's own tunnel
    if not address.startswith(("unix://", "tcp://")) or docker_engine.api.base_url.startswith("https"):
        pytest.skip(
            f"engine-specific (plain engine address): the proxy forwards plain HTTP, not to {address}"
        )
    proxies: list[EngineProxy] = []

    def start(freeze_file: Path | None = None, tls: ssl.SSLContext | None = None) -> EngineProxy:
        proxies.append(EngineProxy(address, freeze_file, tls))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def tls_material(tmp_path: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 it signed (`ca`, `cert`, `key` files)."""
    folder = tmp_path / "tls"
    folder.mkdir()
    paths = {name: folder / f"{name}.pem" for name in ("ca", "ca-key", "cert", "key", "csr")}

    def openssl(command: str) -> None:
        arguments = command.format(**{name: str(path) for name, path in paths.items()}).split()
        subprocess.run(["openssl", *arguments], check=True, capture_output=True)

    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-CA -keyout {ca-key} -out {ca}")
    openssl("req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout {key} -out {csr}")
    openssl(
        f"x509 -req -in {{csr}} -CA {{ca}} -CAkey {{ca-key}} -CAcreateserial -days 2 -extfile {folder / 'san.cnf'} -out {{cert}}"
    )
    return {name: paths[name] for name in ("ca", "cert", "key")}
