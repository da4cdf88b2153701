"""The `Container` handle on the real engine: stop, start and restart (with readiness checks
that read only the new run's output, and ports read again), logs split by stream, exec as a
user, with environment and working directory, bounded by a timeout, and files copied in and
out through the API.

Every container here is busybox.
"""

from __future__ import annotations

import time

import pytest
import requests

from pytest_dockerimg import DockerImgError, wait

# Counts its runs in /runs (the container's filesystem survives a restart), says so at once,
# and says "ready" a second later: a check that read an earlier run's output would pass early.
COUNTING = [
    "sh",
    "-c",
    "n=$(( $(cat /runs 2>/dev/null || echo 0) + 1 )); echo $n > /runs; "
    'echo "run $n"; sleep 1; echo "ready $n"; exec sleep 1000',
]


@pytest.fixture
def counting(docker_run):
    return docker_run("busybox:latest", command=COUNTING, wait=wait.log("ready 1"))


def test_restart_waits_for_the_new_runs_output(counting):
    """`restart(wait=wait.log("ready"))` returns once the *new* run says ready: the first
    run's "ready 1" does not count."""
    counting.restart(wait=wait.log(r"ready \d"))

    assert "ready 2" in counting.logs_since_start()
    assert "run 1" not in counting.logs_since_start()
    assert counting.logs().count("ready") == 2  # logs() is every run's output


def test_stop_then_start_waits_for_the_new_run(counting):
    counting.stop()
    assert counting.status == "exited"

    counting.start(wait=wait.log("ready"))

    assert counting.status == "running"
    assert counting.logs_since_start().splitlines() == ["run 2", "ready 2"]


def test_restart_reads_the_published_ports_again(httpd, docker_run):
    """A random host port is chosen again at each start: `url()` follows it."""
    web = docker_run(httpd, ports=["80"], wait=wait.http(80))

    web.restart(wait=wait.http(80))

    assert web.status == "running"
    assert web.port(80) == int(web.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
    assert requests.get(web.url(80), timeout=5).ok


@pytest.fixture(scope="module")
def httpd(docker_build):
    return docker_build("../data/httpd")


def test_stop_kills_at_once_by_default(docker_run):
    """`stop()` uses --docker-stop-timeout (0 by default): a process that ignores SIGTERM (sleep
    as PID 1) is killed at once, not after docker's 10 s."""
    sleeper = docker_run("busybox:latest", command=["sleep", "1000"])
    started = time.monotonic()

    sleeper.stop()

    assert time.monotonic() - started < 8  # loose: docker's own default would take 10 s
    assert sleeper.attrs["State"]["ExitCode"] == 137


def test_logs_split_by_stream(docker_run):
    talker = docker_run("busybox:latest", command=["sh", "-c", "echo out; echo err >&2; exec sleep 1000"])
    talker.wait_for(wait.log("err"))

    assert talker.logs(stderr=False) == "out\n"
    assert talker.logs(stdout=False) == "err\n"
    assert sorted(talker.logs().splitlines()) == ["err", "out"]
    assert talker.logs(tail=1) in ("out\n", "err\n")


def test_exec_as_user_with_environment_and_workdir(docker_run):
    """`exec(cmd, user=, environment=, workdir=)` is `docker exec -u -e -w`; the result has the
    exit code, both streams interleaved (`output`) and each on its own."""
    box = docker_run("busybox:latest", command=["sleep", "1000"])

    result = box.exec(
        ["sh", "-c", 'id -u; echo "$GREETING"; pwd; echo oops >&2; exit 3'],
        user="1234:1234",
        environment={"GREETING": "hello"},
        workdir="/etc",
    )

    assert result.exit_code == 3
    assert result.stdout == "1234\nhello\n/etc\n"
    assert result.stderr == "oops\n"
    assert sorted(result.output.splitlines()) == sorted(["1234", "hello", "/etc", "oops"])
    exit_code, output, stdout, stderr = box.exec("true")
    assert (exit_code, output, stdout, stderr) == (0, "", "", "")


def test_exec_is_bounded_by_a_timeout_that_says_so(docker_run):
    box = docker_run("busybox:latest", command=["sleep", "1000"])

    with pytest.raises(DockerImgError, match=r"still ran after 0.5 s \(timeout=\)"):
        box.exec(["sleep", "30"], timeout=0.5)


def test_exec_in_a_stopped_container_says_why(docker_run):
    box = docker_run("busybox:latest", command=["true"])
    box.wait_exit()

    with pytest.raises(DockerImgError, match=rf"container {box.name} is not running \(status exited\)"):
        box.exec(["ls"])


def test_wait_exit_is_bounded_by_default(docker_run):
    """`wait_exit()` without a timeout waits as long as a readiness check (--docker-timeout)."""
    box = docker_run("busybox:latest", command=["sleep", "1000"])
    box.default_timeout = 0.5

    with pytest.raises(DockerImgError, match=r"still runs after 0.5 s"):
        box.wait_exit()


def test_copy_a_file_and_a_folder_in_and_out(docker_run, tmp_path):
    """`copy_to(container_path, host_path)` and `copy_from(container_path, host_path)` are
    `docker cp`, through the API: missing folders are created, files belong to root."""
    (tmp_path / "config.ini").write_text("[app]\nname = demo\n")
    site = tmp_path / "site"
    (site / "css").mkdir(parents=True)
    (site / "index.html").write_text("<h1>hi</h1>\n")
    (site / "css" / "main.css").write_text("h1 {}\n")
    box = docker_run("busybox:latest", command=["sleep", "1000"])

    box.copy_to("/etc/app/config.ini", tmp_path / "config.ini")
    box.copy_to("/srv/www", site)

    assert box.exec(["cat", "/etc/app/config.ini"]).stdout == "[app]\nname = demo\n"
    assert box.exec(["cat", "/srv/www/css/main.css"]).stdout == "h1 {}\n"
    assert box.exec(["stat", "-c", "%u:%g", "/srv/www/index.html"]).stdout == "0:0\n"

    box.exec(["sh", "-c", "echo changed > /srv/www/index.html"])
    copied = box.copy_from("/srv/www", tmp_path / "back")
    assert (copied / "index.html").read_text() == "changed\n"
    assert (copied / "css" / "main.css").read_text() == "h1 {}\n"
    assert box.copy_from("/etc/app/config.ini", tmp_path / "out.ini").read_text() == "[app]\nname = demo\n"


def test_copy_errors_name_the_path(docker_run, tmp_path):
    box = docker_run("busybox:latest", command=["sleep", "1000"])

    with pytest.raises(DockerImgError, match="has no /no/such/file"):
        box.copy_from("/no/such/file", tmp_path / "x")
    with pytest.raises(DockerImgError, match="does not exist on this machine"):
        box.copy_to("/tmp/x", tmp_path / "missing")
    with pytest.raises(DockerImgError, match="absolute path in the container"):
        box.copy_to("relative/x", tmp_path)
