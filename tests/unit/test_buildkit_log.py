"""Parsing BuildKit's progress as the docker CLI prints it (recorded from the walkthrough's `ngin`
typo): `--progress=plain` of docker 20.10's built-in BuildKit, `--progress=rawjson` of buildx.
Both give the same steps, numbered as the Dockerfile counts them, and the same failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dockerimg.builders.buildkit_log import BuildKitLog
from pytest_dockerimg.dockerfile import Dockerfile

RECORDED = Path(__file__).parent.parent / "data" / "buildkit-progress"


def read(name: str) -> tuple[BuildKitLog, list[str]]:
    announced: list[str] = []
    log = BuildKitLog(Dockerfile((RECORDED / "Dockerfile").read_text()), on_step=announced.append)
    for line in (RECORDED / name).read_text().splitlines():
        log.feed(line)
    log.finish()
    return log, announced


@pytest.mark.parametrize("name", ["typo.plain", "typo.rawjson"])
def test_the_failing_step_its_exit_code_and_output(name):
    log, _ = read(name)
    assert log.failed is not None
    assert log.failed.instruction is not None
    assert (log.failed.instruction.index, log.failed.instruction.text) == (5, "RUN apt-get install -y ngin")
    assert log.exit_code == 100
    assert "E: Unable to locate package ngin" in log.failed.output
    assert "E: Unable to locate package ngin" in log.text
    assert "exit code: 100" in log.message


@pytest.mark.parametrize(("name", "update_cached"), [("typo.plain", False), ("typo.rawjson", True)])
def test_steps_are_the_instructions_that_ran_numbered_as_in_the_dockerfile(name, update_cached):
    log, announced = read(name)
    assert [(step.index, step.total, step.instruction, step.cached) for step in log.steps] == [
        (1, 8, "FROM debian:bookworm", True),
        (4, 8, "RUN apt-get update", update_cached),
    ]
    assert announced[-1] == "Step 5/8 : RUN apt-get install -y ngin"
    if not update_cached:
        assert "Step 4/8 : RUN apt-get update" in announced
        assert log.steps[1].seconds == 1.5


def test_a_step_of_an_unknown_dockerfile_keeps_buildkit_s_name():
    """A git URL context: the Dockerfile is not on this machine."""
    log = BuildKitLog()
    for line in ["#5 [2/2] RUN echo hi", "#5 0.2 hi", "#5 DONE 0.3s"]:
        log.feed(line)
    assert [(step.index, step.total, step.instruction, step.cached) for step in log.steps] == [
        (2, 2, "RUN echo hi", False)
    ]


def test_a_dockerfile_the_engine_s_frontend_cannot_read_names_its_line():
    """Engine 20.10's built-in frontend does not know `COPY --link`: no step ran."""
    log = BuildKitLog()
    log.feed(
        "ERROR: failed to build: failed to solve: rpc error: code = Unknown desc = failed to solve with "
        "frontend dockerfile.v0: failed to create LLB definition: dockerfile parse error line 3: Unknown flag: link"
    )
    assert log.failed is None
    assert log.parse_error == (3, "Unknown flag: link")
    assert log.message == "the engine's Dockerfile frontend cannot read line 3: Unknown flag: link"
