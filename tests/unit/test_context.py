"""The build context: `.dockerignore`, FROM lines, and a digest that changes exactly when the
build could produce something different."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_dockerimg.context import base_images, context_files, dockerignore_patterns, inputs_digest


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY . /app\n")
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "secret.key").write_text("do not ship\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "today.log").write_text("noise\n")
    (tmp_path / ".dockerignore").write_text("# comment\n*.key\nlogs\n\n")
    return tmp_path


def digest(context: Path, **overrides: object) -> str:
    arguments: dict[str, object] = {
        "dockerfile": "Dockerfile",
        "dockerfile_text": (context / "Dockerfile").read_text(),
        "buildargs": {},
        "target": None,
        "labels": {},
        "base_ids": ["sha256:base"],
    }
    arguments.update(overrides)
    return inputs_digest(context, context_files(context, "Dockerfile"), **arguments)  # type: ignore[arg-type]


def test_dockerignore_patterns_skip_comments_and_blanks(context):
    assert dockerignore_patterns(context) == ["*.key", "logs"]


def test_ignored_files_are_not_in_the_context(context):
    assert context_files(context, "Dockerfile") == [".dockerignore", "Dockerfile", "app.py"]


def test_the_digest_ignores_ignored_files_and_mtimes(context):
    before = digest(context)
    (context / "secret.key").write_text("changed\n")
    (context / "logs" / "today.log").write_text("more noise\n")
    os.utime(context / "app.py", (1, 1))
    assert digest(context) == before


@pytest.mark.parametrize(
    "change",
    [
        lambda c: (c / "app.py").write_text("print('bye')\n"),
        lambda c: (c / "new.txt").write_text("new\n"),
        lambda c: (c / "app.py").chmod(0o755),
    ],
    ids=["content", "new file", "mode"],
)
def test_the_digest_follows_the_files(context, change):
    before = digest(context)
    change(context)
    assert digest(context) != before


@pytest.mark.parametrize(
    "override",
    [
        {"buildargs": {"VERSION": "2"}},
        {"target": "test"},
        {"labels": {"team": "web"}},
        {"base_ids": ["sha256:newer-base"]},
        {"dockerfile_text": "FROM busybox\nCOPY . /srv\n"},
    ],
)
def test_the_digest_follows_the_build_options_and_the_base(context, override):
    assert digest(context, **override) != digest(context)


def test_base_images_skip_scratch_and_stage_names():
    dockerfile = "FROM golang:1.22 AS build\nRUN make\nFROM scratch AS empty\nFROM build\nfrom busybox\n"
    assert base_images(dockerfile) == ["golang:1.22", "busybox"]


def test_a_base_from_a_build_argument_cannot_be_known():
    assert base_images("ARG BASE=busybox\nFROM $BASE\n") is None
    assert base_images("FROM --platform=linux/amd64 busybox\n") == ["busybox"]
