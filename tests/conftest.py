"""Shared test helpers: small busybox-based build contexts, Dockerfiles that no earlier run has
cached (whose layers this test session removes at its end), and a check that inner pytest
sessions left nothing behind in the engine."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from docker.errors import DockerException

from pytest_dockerimg import Engine
from pytest_dockerimg.cleanup import children_first, remove_image
from pytest_dockerimg.labels import ALL, Mark
from pytest_dockerimg.plugin import SESSION_KEY

HTTPD_DOCKERFILE = """\
FROM busybox:latest
RUN mkdir -p /www && echo 'Hi, I am in your container' > /www/index.html
EXPOSE 80
CMD ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]
"""


THROWAWAY = "PYTEST_DOCKERIMG_TESTS_THROWAWAY"


def _fresh_dockerfile(*instructions: str, base: str = "busybox:latest") -> str:
    return "\n".join([f"FROM {base}", f"ENV {THROWAWAY}={uuid.uuid4().hex}", *instructions]) + "\n"


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
            if any(item.startswith(f"{THROWAWAY}=") for item in env):
                throwaway.append(image)
        for image_id in children_first(throwaway):
            remove_image(client.api, image_id)
    finally:
        client.close()


@dataclass(frozen=True)
class Leftovers:
    """Resources marked by inner pytest sessions of this process (pytester runs them in-process,
    so their owner is this pid), the outer session's own resources left out. Other pytest runs
    on the same engine do not show up here, so the check stays exact when they run in parallel."""

    containers: frozenset[str]
    images: frozenset[str]
    volumes: frozenset[str]

    def as_dict(self) -> dict[str, set[str]]:
        return {"containers": set(self.containers), "images": set(self.images), "volumes": set(self.volumes)}


@pytest.fixture
def inner_leftovers(request: pytest.FixtureRequest, docker_engine: Engine) -> Callable[[], Leftovers]:
    """`inner_leftovers()`: what inner sessions of this process have left in the engine now."""
    api = docker_engine.api
    outer_session = request.config.stash[SESSION_KEY].identity.session

    def inner(labels: dict[str, str] | None) -> bool:
        mark = Mark.of(labels)
        return mark is not None and mark.owner == os.getpid() and mark.session != outer_session

    def take() -> Leftovers:
        return Leftovers(
            containers=frozenset(
                c["Id"] for c in api.containers(all=True, filters=ALL) if inner(c.get("Labels"))
            ),
            images=frozenset(i["Id"] for i in api.images(all=True, filters=ALL) if inner(i.get("Labels"))),
            volumes=frozenset(
                v["Name"] for v in api.volumes(filters=ALL).get("Volumes") or [] if inner(v.get("Labels"))
            ),
        )

    return take


@pytest.fixture
def assert_no_leaks(inner_leftovers: Callable[[], Leftovers]) -> Callable[[], None]:
    """Call after running inner pytest sessions: fails if they left a container, an image (or a
    tag, which keeps its image alive) or a volume behind."""
    before = inner_leftovers()

    def check() -> None:
        after = inner_leftovers()
        leaked = {kind: found - before.as_dict()[kind] for kind, found in after.as_dict().items()}
        assert leaked == {"containers": set(), "images": set(), "volumes": set()}

    return check


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
