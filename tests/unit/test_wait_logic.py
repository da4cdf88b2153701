"""The readiness loop's logic, with a scripted target: exits are reported at once, timeouts
name the check that did not pass, passed checks are not run again, polling starts fast."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tenacity import RetryCallState

from pytest_dockerimg import wait
from pytest_dockerimg.errors import ContainerExited, InvalidSpec, NotReady
from pytest_dockerimg.wait import Check, ExecResult, NotYet, poll_interval, wait_until_ready


class ScriptedTarget:
    """A container whose state and logs follow a script; no engine involved."""

    name = "scripted"

    def __init__(self, states: list[dict[str, Any]], logs: str = "") -> None:
        self.states = states
        self._logs = logs

    def state(self) -> dict[str, Any]:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def logs(self) -> str:
        return self._logs

    def logs_since_start(self) -> str:
        return self._logs

    def address(self, port: int | str) -> tuple[str, int]:
        return "127.0.0.1", 1

    def exec(self, cmd: object) -> ExecResult:
        return ExecResult(1, "nope")


class PassesAfter(Check):
    def __init__(self, attempts: int) -> None:
        self.remaining = attempts
        self.calls = 0
        self.description = f"passes-after({attempts})"

    def probe(self, target: Any) -> None:
        self.calls += 1
        self.remaining -= 1
        if self.remaining > 0:
            raise NotYet(f"{self.remaining} more to go")


RUNNING = {"Status": "running", "Running": True}


def test_ready_when_every_check_passes_and_passed_checks_are_not_rerun():
    first, second = PassesAfter(1), PassesAfter(3)
    wait_until_ready(ScriptedTarget([RUNNING]), [first, second], timeout=5)
    assert first.calls == 1
    assert second.calls == 3


def test_an_exit_is_reported_at_once_with_exit_code_and_logs():
    target = ScriptedTarget([RUNNING, {"Status": "exited", "Running": False, "ExitCode": 3}], logs="boom\n")
    started = time.monotonic()
    with pytest.raises(ContainerExited) as caught:
        wait_until_ready(target, [PassesAfter(1000)], timeout=30)
    assert time.monotonic() - started < 1
    assert caught.value.exit_code == 3
    assert caught.value.logs == "boom\n"


def test_a_timeout_names_the_check_and_its_last_error():
    with pytest.raises(NotReady) as caught:
        wait_until_ready(
            ScriptedTarget([RUNNING], logs="listening soon\n"), [PassesAfter(10_000)], timeout=0.2
        )
    assert caught.value.check == "passes-after(10000)"
    assert "more to go" in caught.value.last_error
    assert "listening soon" in str(caught.value)


def test_a_failing_command_check_reports_its_output():
    with pytest.raises(NotReady, match="exit code 1: nope"):
        wait_until_ready(ScriptedTarget([RUNNING]), [wait.command("true")], timeout=0.1)


def test_polling_starts_at_10_ms_and_stays_fast_early():
    def interval(attempt: int, elapsed: float) -> float:
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        state.outcome_timestamp = state.start_time + elapsed
        return poll_interval(state)

    assert interval(1, 0.0) == 0.01
    assert interval(2, 0.01) == 0.02
    assert interval(4, 0.1) == 0.05
    assert interval(10, 1.0) == 0.05
    assert interval(40, 10.0) == 0.25
    assert interval(80, 60.0) == 1.0


def test_wait_accepts_one_check_or_several_and_rejects_anything_else():
    assert len(wait.as_checks(wait.tcp(80))) == 1
    assert len(wait.as_checks([wait.tcp(80), wait.log("ready")])) == 2
    assert wait.as_checks(None) == []
    with pytest.raises(InvalidSpec, match=r"wait= got .*; it takes a check from pytest_dockerimg\.wait"):
        wait.as_checks(["http://localhost"])  # type: ignore[list-item]
    with pytest.raises(InvalidSpec, match="TCP ports only"):
        wait.tcp("53/udp")


def test_checks_describe_themselves():
    assert (
        str(wait.http(80, "/health", contains="ok"))
        == "http(80, '/health': status 200, body containing 'ok')"
    )
    assert str(wait.tcp(5432)) == "tcp(5432)"
    assert str(wait.log(r"ready to accept")) == "log('ready to accept')"
    assert str(wait.healthy()) == "healthy()"
