"""Small pure pieces: labels, engine addresses, refs, timestamps, removal order, error messages,
summary lines, build progress."""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import datetime, timezone

import pytest

from pytest_dockerimg.engine import explain
from pytest_dockerimg.errors import BuildError, ContainerExited, NotReady, PortConflict
from pytest_dockerimg.images import parse_timestamp
from pytest_dockerimg.labels import LABEL, Identity, Mark, process_alive, process_started, this_machine
from pytest_dockerimg.progress import BuildProgress
from pytest_dockerimg.registry import repository_of
from pytest_dockerimg.stats import BuildRecord, Stats


def test_the_mark_round_trips():
    identity = Identity("abc123", "builder-7/1a2b3c4d", 4242, started=99)
    labels = identity.labels("container")
    assert labels == {
        LABEL: "kind=container,session=abc123,host=builder-7/1a2b3c4d,owner=4242,started=99,keep=false"
    }
    assert Mark.of(labels) == Mark("container", "abc123", "builder-7/1a2b3c4d", 4242, 99)
    volume = Mark.of(identity.labels("volume", keep="if-failed"))
    assert volume == Mark("volume", "abc123", "builder-7/1a2b3c4d", 4242, 99, keep="if-failed")
    assert volume.kept
    assert identity.made(volume)
    assert not Identity("other", "builder-7/1a2b3c4d", 4242).made(volume)
    assert not Identity("abc123", "another-machine/00000000", 4242).made(volume)


def test_marks_of_earlier_versions_read_their_keep_flag():
    old = "kind=container,session=a,host=h/1,owner=1,started=2,keep=true"
    assert Mark.of({LABEL: old}).keep == "always"
    assert Mark.of({LABEL: old.replace("true", "false")}).keep == "never"


def test_this_machine_names_the_host_boot_and_pid_namespace():
    host, _, key = this_machine().partition("/")
    assert host == socket.gethostname()
    assert len(key) == 8


def test_a_reused_pid_is_not_the_owner_that_marked_a_resource():
    me = os.getpid()
    assert process_alive(me, process_started(me))
    assert not process_alive(me, process_started(me) + 1)
    assert not process_alive(dead_pid())


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.parametrize(
    "labels", [None, {}, {"maintainer": "me"}, {LABEL: "garbage"}, {LABEL: "session=a,host=b"}]
)
def test_resources_without_a_valid_mark_are_not_ours(labels):
    assert Mark.of(labels) is None


def test_connection_errors_are_explained_from_their_cause():
    # What docker-py raises for a missing socket: the OS error sits in a tuple, two levels down.
    wrapped = ConnectionError(("Connection aborted.", FileNotFoundError(2, "No such file or directory")))
    error = RuntimeError("Error while fetching server API version")
    error.__context__ = wrapped
    assert explain(error) == "the socket does not exist (is dockerd running?)"
    assert "permission denied" in explain(PermissionError(13, "denied"))
    assert explain(RuntimeError("something else\nmore")) == "something else"


@pytest.mark.parametrize(
    ("ref", "repository"),
    [
        ("test/static_web:v1", "test/static_web"),
        ("static_web", "static_web"),
        ("127.0.0.1:5000/test/static_web:v1", "test/static_web"),
        ("registry.example.com/team/app", "team/app"),
        ("localhost/app:1", "app"),
    ],
)
def test_repository_of_drops_registry_host_and_tag(ref, repository):
    assert repository_of(ref) == repository


def test_engine_timestamps_keep_microseconds():
    assert parse_timestamp("2026-11-27T18:12:47.123456789Z") == datetime(
        2026, 11, 27, 18, 12, 47, 123456, timezone.utc
    )
    assert parse_timestamp("2026-11-27T18:12:47Z") == datetime(2026, 11, 27, 18, 12, 47, tzinfo=timezone.utc)
    assert parse_timestamp(0) is None
    assert parse_timestamp(1_700_000_000) == datetime.fromtimestamp(1_700_000_000, timezone.utc)


def test_build_error_message_names_step_exit_code_log_tail_and_layer():
    error = BuildError(
        "static_web (tag test/static_web)",
        "The command '/bin/sh -c apt-get install -y ngin' returned a non-zero code: 100",
        step=4,
        total=7,
        instruction="RUN apt-get install -y ngin",
        exit_code=100,
        log="\n".join([*(f"line {n}" for n in range(40)), "E: Unable to locate package ngin"]),
        last_image_id="e98d2c152d1d",
    )
    text = str(error)
    assert "failed at Step 4/7 : RUN apt-get install -y ngin" in text
    assert "exit code: 100" in text
    assert "E: Unable to locate package ngin" in text
    assert "line 10" not in text  # only the tail
    assert "docker run --rm -it e98d2c152d1d sh" in text


def test_container_errors_carry_the_log_tail():
    exited = ContainerExited("web-1", 3, "starting\nfatal: no config\n")
    assert exited.exit_code == 3
    assert "exited with code 3 before it was ready" in str(exited)
    assert "fatal: no config" in str(exited)
    not_ready = NotReady("web-1", "http(80, '/')", 2.0, "connection refused", "")
    assert "not ready after 2 s: http(80, '/') did not pass" in str(not_ready)
    assert "last error: connection refused" in str(not_ready)
    assert "(no log output)" in str(not_ready)
    assert "host port 127.0.0.1:8080 is already in use" in str(PortConflict("127.0.0.1:8080", "Bind failed"))


def test_summary_lines():
    stats = Stats()
    stats.add_build(BuildRecord("test/web:v1", 12.5, 7, 5))
    stats.add_build(BuildRecord("web", 0.0, 0, 0, reused=True))
    stats.add_build(BuildRecord("broken", 1.25, 0, 0, failed=True))
    stats.containers = 3
    other = Stats(containers=2, teardown_seconds=0.5)
    stats.merge(Stats.from_dict(other.to_dict()))
    assert stats.lines() == [
        "image test/web:v1: 12.5 s, 5/7 steps cached",
        "image web: reused (inputs unchanged, no build)",
        "image broken: FAILED after 1.2 s",
        "3 image(s), 5 container(s); build 13.8 s, start 0.0 s, ready 0.0 s, teardown 0.5 s",
    ]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_silent_for_quick_builds():
    said: list[str] = []
    clock = FakeClock()
    progress = BuildProgress("web", said.append, quiet=2.0, clock=clock)
    progress.step("Step 1/2 : FROM busybox")
    clock.now = 1.0
    progress.step("Step 2/2 : RUN true")
    assert said == []


def test_progress_names_the_running_step_after_the_quiet_period_and_keeps_a_heartbeat():
    said: list[str] = []
    clock = FakeClock()
    progress = BuildProgress("web", said.append, quiet=2.0, heartbeat=15.0, clock=clock)
    progress.step("Step 1/3 : FROM debian")
    progress.step("Step 2/3 : RUN apt-get update")
    clock.now = 2.5
    progress.tick()
    progress.tick()
    clock.now = 20.0
    progress.tick()
    progress.step("Step 3/3 : EXPOSE 80")
    assert said == [
        "building web: Step 2/3 : RUN apt-get update",
        "building web: Step 2/3 : RUN apt-get update (running for 20 s)",
        "building web: Step 3/3 : EXPOSE 80",
    ]


def test_a_push_error_without_a_message_field_keeps_the_engines_words():
    """docker-py raises KeyError for an error body without "message" (podman's failed pushes
    answer `{"error": ..., "errorDetail": ...}`); the registry reports the body's error."""
    import requests

    from pytest_dockerimg.registry import _failure

    response = requests.Response()
    response.status_code = 500
    response._content = b'{"errorDetail": {"message": "dial tcp 127.0.0.1:1: connect: connection refused"}}'

    def docker_py_push() -> None:  # what docker-py's error translation does with such a body
        try:
            raise requests.HTTPError("500 Server Error", response=response)
        except requests.HTTPError as http_error:
            raise KeyError("message") from http_error

    with pytest.raises(KeyError) as raised:
        docker_py_push()
    assert _failure(raised.value) == "dial tcp 127.0.0.1:1: connect: connection refused"
