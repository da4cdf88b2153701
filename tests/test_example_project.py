"""The example project is the plugin's main job: it must pass, with no skips, on a machine with
an engine, and leave nothing behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_dockerimg.labels import ALL, Mark
from pytest_dockerimg.plugin import SESSION_KEY

EXAMPLE_PROJECT = Path(__file__).resolve().parent.parent / "example_project"


@pytest.mark.parametrize("builder", ["buildkit", "classic"])
def test_the_example_project_passes_and_leaves_nothing_behind(docker_engine, builder, request):
    """With either builder: the walkthrough's `ngin` typo fails with exit code 100, names its
    step and gives a debug image under both."""
    choice = request.config.stash[SESSION_KEY].builder_choice()
    if builder == "buildkit" and choice.cli is None:
        pytest.skip(f"no docker CLI here builds with BuildKit: {choice.reason}")
    api = docker_engine.api
    before = example_tags(api)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--docker-builder",
            builder,
            str(EXAMPLE_PROJECT),
        ],
        cwd=EXAMPLE_PROJECT.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _ = process.communicate(timeout=1800)
    summary = output.strip().splitlines()[-1]
    assert process.returncode == 0, output
    assert re.fullmatch(r"=+ \d+ passed in [\d.]+s( \(\S+\))? =+", summary), summary

    marks = [Mark.of(c.get("Labels")) for c in api.containers(all=True, filters=ALL)]
    marks += [Mark.of(n.get("Labels")) for n in api.networks(filters=ALL)]
    marks += [Mark.of(v.get("Labels")) for v in api.volumes(filters=ALL).get("Volumes") or []]
    assert [mark for mark in marks if mark and mark.owner == process.pid] == []
    assert example_tags(api) == before, "the example's tags are gone, or back where they were"


def example_tags(api) -> set[str]:
    """The example project's tags in the engine, with the image each names."""
    return {
        f"{tag}@{image['Id']}"
        for image in api.images()
        for tag in image.get("RepoTags") or []
        if tag.startswith(("test/static_web", "test/web_redis")) or "/test/static_web:" in tag
    }
