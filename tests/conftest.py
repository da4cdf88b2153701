"""Shared test helpers: small busybox-based images, and a snapshot of what the plugin (or anyone)
left in the engine, to prove that a run leaks nothing and touches nothing it did not create."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_dockerimg import Engine
from pytest_dockerimg.labels import ALL

HTTPD_DOCKERFILE = """\
FROM busybox:latest
RUN mkdir -p /www && echo 'Hi, I am in your container' > /www/index.html
EXPOSE 80
CMD ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]
"""


@dataclass(frozen=True)
class EngineSnapshot:
    """What `docker ps -a`, `docker images` and `docker volume ls` show, in ids and tags."""

    containers: frozenset[str]
    tags: frozenset[str]
    images: frozenset[str]
    volumes: frozenset[str]
    marked_containers: frozenset[str]
    marked_images: frozenset[str]

    def new_since(self, before: EngineSnapshot) -> dict[str, set[str]]:
        """What appeared since `before`, by kind; empty sets when nothing leaked."""
        return {
            "containers": set(self.containers - before.containers),
            "tags": set(self.tags - before.tags),
            "images": set(self.marked_images - before.marked_images),
            "volumes": set(self.volumes - before.volumes),
        }


@pytest.fixture
def engine_snapshot(docker_engine: Engine) -> Callable[[], EngineSnapshot]:
    """Take a snapshot of the engine's containers, tagged images and volumes."""
    api = docker_engine.api

    def take() -> EngineSnapshot:
        images = api.images()
        return EngineSnapshot(
            containers=frozenset(c["Id"] for c in api.containers(all=True)),
            tags=frozenset(tag for image in images for tag in image.get("RepoTags") or [] if tag != "<none>:<none>"),
            images=frozenset(image["Id"] for image in images),
            volumes=frozenset(v["Name"] for v in api.volumes().get("Volumes") or []),
            marked_containers=frozenset(c["Id"] for c in api.containers(all=True, filters=ALL)),
            marked_images=frozenset(i["Id"] for i in api.images(filters=ALL)),
        )

    return take


@pytest.fixture
def assert_no_leaks(engine_snapshot: Callable[[], EngineSnapshot]) -> Callable[[], None]:
    """Call at the end of a test: fails if a container, tag, marked image or volume appeared
    since the test started (for tests that run inner pytest sessions)."""
    before = engine_snapshot()

    def check() -> None:
        leaked = engine_snapshot().new_since(before)
        assert leaked == {"containers": set(), "tags": set(), "images": set(), "volumes": set()}

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
