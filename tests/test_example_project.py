"""The example project is the plugin's main job: it must pass, with no skips, on a machine with
an engine, and leave nothing behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pytest_dockerimg.labels import ALL, Mark

EXAMPLE_PROJECT = Path(__file__).resolve().parent.parent / "example_project"


def test_the_example_project_passes_and_leaves_nothing_behind(docker_engine):
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(EXAMPLE_PROJECT)],
        cwd=EXAMPLE_PROJECT.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _ = process.communicate(timeout=1800)
    summary = output.strip().splitlines()[-1]
    assert process.returncode == 0, output
    assert re.fullmatch(r"=+ \d+ passed in [\d.]+s( \(\S+\))? =+", summary), summary

    api = docker_engine.api
    marks = [Mark.of(c.get("Labels")) for c in api.containers(all=True, filters=ALL)]
    marks += [Mark.of(n.get("Labels")) for n in api.networks(filters=ALL)]
    marks += [Mark.of(v.get("Labels")) for v in api.volumes(filters=ALL).get("Volumes") or []]
    marks += [Mark.of(n.get("Labels")) for n in api.networks(filters=ALL)]
    assert [mark for mark in marks if mark and mark.owner == process.pid] == []
    tags = {tag for image in api.images() for tag in image.get("RepoTags") or []}
    assert not {
        tag
        for tag in tags
        if tag.startswith(("test/static_web", "test/web_redis")) or "/test/static_web:" in tag
    }
