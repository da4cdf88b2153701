"""Nothing leaks: not when tests pass, fail or error, not on Ctrl-C or SIGTERM, not when pytest
is killed (the watcher), not after a crash whose watcher died too (the stale sweep at the next
start). And nothing the plugin did not create is ever touched."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import ssl
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from docker.errors import APIError, NotFound

from pytest_dockerimg.labels import Identity, process_started, this_machine
from pytest_dockerimg.plugin import SESSION_KEY
from pytest_dockerimg.tags import short_tag

SLEEPING_TEST = """
import pathlib
import time

def test_sleeps_with_resources(docker_build, docker_run):
    image = docker_build("web", tag="{tag}")
    docker_run(image, name="{name}", command=["sleep", "300"])
    pathlib.Path("started").write_text("yes")
    time.sleep(120)
"""

# pytest whose Ctrl-C raises KeyboardInterrupt also when this suite runs in the background (a
# shell's background job ignores SIGINT, and a child python keeps ignoring it).
INTERRUPTIBLE_PYTEST = (
    "import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.exit(pytest.main(sys.argv[1:]))"
)


def heed_ctrl_c() -> None:
    """Let the inner pytest take SIGINT as Ctrl-C at a terminal: a shell starts background jobs
    (a suite run with `&`, a CI step) with SIGINT ignored, children inherit that, and Python then
    installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def sleeping_session(pytester, write_context, fresh_dockerfile, wait_until):
    """Start `pytest` in a subprocess whose test holds a container and a built image, and return
    (process, container name, image tag) once both exist."""
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> tuple[subprocess.Popen[bytes], str, str]:
        token = uuid.uuid4().hex[:8]
        name, tag = f"sleeper-{token}", f"test/sleeper:{token}"
        (pytester.path / "web").mkdir()
        (pytester.path / "web" / "Dockerfile").write_text(fresh_dockerfile())
        pytester.makepyfile(test_sleeper=SLEEPING_TEST.format(name=name, tag=tag))
        process = subprocess.Popen(
            [sys.executable, "-c", INTERRUPTIBLE_PYTEST, "-p", "no:cacheprovider", "test_sleeper.py"],
            cwd=pytester.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=heed_ctrl_c,
        )
        processes.append(process)
        assert wait_until(lambda: (pytester.path / "started").exists(), timeout=60), (
            "the inner test never started"
        )
        return process, name, tag

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def container_exists(docker_engine, name: str) -> bool:
    # By name, not with a `^/name$` filter: podman's name filter does not take that form.
    try:
        docker_engine.client.containers.get(name)
    except NotFound:
        return False
    except APIError as error:  # podman, while the container is being removed: 500 "no such container"
        if "no such container" not in str(error):
            raise
        return False
    return True


def tag_exists(docker_engine, tag: str) -> bool:
    """Whether `docker images` lists `tag` (podman's `localhost/` or `docker.io/` left out)."""
    return any(tag in map(short_tag, image.get("RepoTags") or []) for image in docker_engine.api.images())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_tears_down_before_it_exits(docker_engine, sleeping_session, signum):
    process, name, tag = sleeping_session()
    assert container_exists(docker_engine, name)
    process.send_signal(signum)
    try:
        output = process.communicate(timeout=60)[0].decode()
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"no exit within 60 s of {signum!r}; its output:\n{process.communicate()[0].decode()}")
    assert "KeyboardInterrupt" in output
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "Traceback" not in output
    assert "cleanup problem" not in output
    assert not container_exists(docker_engine, name)
    assert not tag_exists(docker_engine, tag)


@pytest.fixture
def tls_context(engine_proxy, tls_material, tmp_path, monkeypatch) -> str:
    """The current Docker context is a TLS one (as a remote engine with certificates, or Docker
    Desktop, sets up): this engine behind a TLS proxy, whose CA only the context's folder has."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tls_material["cert"], tls_material["key"])
    proxy = engine_proxy(tls=server)
    name = "pytest-dockerimg-tls"
    digest = hashlib.sha256(name.encode()).hexdigest()
    config = tmp_path / "docker-config"
    meta = config / "contexts" / "meta" / digest / "meta.json"
    meta.parent.mkdir(parents=True)
    endpoint = {"Host": f"tcp://127.0.0.1:{proxy.port}", "SkipTLSVerify": False}
    meta.write_text(json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint}}))
    tls_folder = config / "contexts" / "tls" / digest / "docker"
    tls_folder.mkdir(parents=True)
    (tls_folder / "ca.pem").write_bytes(tls_material["ca"].read_bytes())
    (config / "config.json").write_text(json.dumps({"currentContext": name}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    return name


@pytest.mark.parametrize("reached", ["DOCKER_HOST", "tls_context"])
def test_a_killed_run_is_cleaned_up_by_the_watcher_within_seconds(
    request, docker_engine, sleeping_session, wait_until, reached
):
    """The watcher reaches the engine as the session did: also through a Docker context with TLS."""
    if reached == "tls_context":
        request.getfixturevalue("tls_context")
    process, name, tag = sleeping_session()
    assert container_exists(docker_engine, name)
    assert tag_exists(docker_engine, tag)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert wait_until(
        lambda: not container_exists(docker_engine, name) and not tag_exists(docker_engine, tag), timeout=30
    ), "the watcher did not remove the killed session's container and image within 30 s"


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_the_next_session_sweeps_what_a_dead_session_left_and_touches_nothing_else(pytester, docker_engine):
    client = docker_engine.client
    here = this_machine()
    reused_pid = Identity(uuid.uuid4().hex[:16], here, os.getpid(), started=process_started(os.getpid()) + 1)
    dead = Identity(uuid.uuid4().hex[:16], here, dead_pid())
    alive = Identity(uuid.uuid4().hex[:16], here, os.getpid(), started=process_started(os.getpid()))
    # Another container with the same hostname, or another pid namespace: its pids mean nothing here.
    other_namespace = Identity(uuid.uuid4().hex[:16], here.split("/")[0] + "/00000000", dead_pid())

    def create(labels):
        return client.containers.create("busybox:latest", "sleep 300", labels=labels)

    doomed = [create(dead.labels("container")), create(reused_pid.labels("container"))]
    untouchable = [
        create(dead.labels("container", keep="always")),
        # Kept by --keep-containers failed in a session whose ledger only its owner can read:
        # the keep decision travels with the container, so no other session removes it.
        create(dead.labels("container", keep="if-failed")),
        create(alive.labels("container")),
        create(other_namespace.labels("container")),
        create({"team": "web"}),
        # Made by hand with a label copied from one of the plugin's volumes: not a container of ours.
        create(dead.labels("volume")),
    ]
    try:
        pytester.makepyfile("def test_uses_docker(docker_run):\n    docker_run('busybox:latest')\n")
        result = pytester.runpytest()
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["removed what dead sessions left behind: 2 container(s)*"])
        remaining = {c.id for c in client.containers.list(all=True)}
        assert not {c.id for c in doomed} & remaining
        assert {c.id for c in untouchable} <= remaining
    finally:
        for container in untouchable:
            container.remove(force=True)


def test_what_users_make_from_the_plugins_images_is_theirs(pytester, docker_engine, fresh_dockerfile):
    """Docker copies an image's labels to the containers and images made from it: those made
    outside the plugin are left alone at the end of the session."""
    tag = f"test/users-own:{uuid.uuid4().hex[:8]}"
    pytester.mkdir("web").joinpath("Dockerfile").write_text(fresh_dockerfile('CMD ["sleep", "300"]'))
    pytester.makepyfile(
        f"""
        import io, pathlib

        def test_use_the_image_by_hand(docker_build, docker_engine):
            image = docker_build("web")
            own = docker_engine.client.containers.create(image.id)
            pathlib.Path("container").write_text(own.id)
            child, _ = docker_engine.client.images.build(
                fileobj=io.BytesIO(f"FROM {{image.id}}\\nRUN echo mine > /mine".encode()), tag={tag!r}, rm=True
            )
        """
    )
    container_id = None
    try:
        pytester.runpytest().assert_outcomes(passed=1)
        container_id = (pytester.path / "container").read_text()
        assert docker_engine.client.containers.get(container_id).id == container_id
        assert tag_exists(docker_engine, tag)
    finally:
        if container_id:
            docker_engine.client.containers.get(container_id).remove(force=True)
        if tag_exists(docker_engine, tag):
            docker_engine.client.images.remove(tag, force=True)


def test_a_tag_the_user_had_goes_back_to_their_image(pytester, docker_engine, fresh_dockerfile):
    """A build tagged `test/mine:v1` moves that tag to the plugin's image for the session; at
    the end it goes back to the image that had it before."""
    tag = f"test/mine:{uuid.uuid4().hex[:8]}"
    docker_engine.client.images.get("busybox:latest").tag(*tag.split(":"))  # podman: repo, tag apart
    pytester.mkdir("web").joinpath("Dockerfile").write_text(fresh_dockerfile())
    pytester.makepyfile(
        f"""
        def test_build_under_the_users_tag(docker_build, docker_engine):
            image = docker_build("web", tag={tag!r})
            assert docker_engine.client.images.get({tag!r}).id == image.id
        """
    )
    try:
        pytester.runpytest().assert_outcomes(passed=1)
        assert docker_engine.client.images.get(tag).id == docker_engine.client.images.get("busybox:latest").id
    finally:
        docker_engine.client.images.remove(tag, noprune=True)


def test_keep_images_keeps_them_and_the_next_session_reuses_them_without_a_build(
    pytester, docker_engine, fresh_dockerfile
):
    tag = f"test/kept:{uuid.uuid4().hex[:8]}"
    pytester.mkdir("web").joinpath("Dockerfile").write_text(fresh_dockerfile(f"ENV TAG={tag}"))
    pytester.makepyfile(
        f"""
        def test_build(docker_build):
            image = docker_build("web", tag="{tag}")
            print("REUSED", image.reused)
        """
    )
    try:
        first = pytester.runpytest("-s", "--keep-images")
        first.assert_outcomes(passed=1)
        first.stdout.fnmatch_lines(["*REUSED False"])
        assert tag_exists(docker_engine, tag)
        second = pytester.runpytest("-s")
        second.assert_outcomes(passed=1)
        second.stdout.fnmatch_lines(["*REUSED True", f"image {tag}: reused (inputs unchanged, no build)"])
        assert tag_exists(docker_engine, tag), (
            "a kept image belongs to the user now: a later session keeps off it"
        )
    finally:
        docker_engine.client.images.remove(tag, force=True, noprune=True)


@pytest.mark.parametrize("options", [[], ["--no-build-cache"]], ids=["cached", "no-build-cache"])
def test_xdist_builds_an_image_once_for_all_workers(pytester, assert_no_leaks, fresh_dockerfile, options):
    pytester.mkdir("web").joinpath("Dockerfile").write_text(fresh_dockerfile("RUN sleep 1"))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_worker(docker_build, docker_run, n):
            image = docker_build("web", tag="test/xdist:once")
            docker_run(image, command=["true"])
        """
    )
    result = pytester.runpytest("-n", "2", "-p", "no:cacheprovider", *options)
    result.assert_outcomes(passed=6)
    lines = [line for line in result.stdout.lines if line.startswith("image test/xdist:once:")]
    assert sum("steps cached" in line for line in lines) == 1, lines  # one build...
    assert all("steps cached" in line or "reused" in line for line in lines)  # ...the rest share it
    result.stdout.fnmatch_lines(["* 6 container(s)*"])
    assert_no_leaks()


def test_a_failing_build_fails_once_per_session_not_once_per_test(pytester, fresh_dockerfile):
    pytester.mkdir("broken").joinpath("Dockerfile").write_text(fresh_dockerfile("RUN sleep 1 && exit 4"))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        @pytest.mark.docker_image("broken")
        def test_needs_the_image(docker_image, n):
            pass
        """
    )
    result = pytester.runpytest("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=4)
    assert sum("image broken: FAILED after" in line for line in result.stdout.lines) == 1
    assert result.stdout.str().count("exit code: 4") >= 4  # every test says why


WATCHER_PROBE = """
import os
from pathlib import Path

def watcher_of(owner):
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().split(b"\\0")
        except OSError:
            continue
        if any(b"sweep_owner" in arg for arg in args) and str(owner).encode() in args:
            return entry
    return None

def test_uses_docker(docker_run):
    docker_run("busybox:latest", command=["true"])
    watcher = watcher_of(os.getpid())
    assert watcher is not None, "no watcher runs for this session"
    rss_kb = int(next(line.split()[1] for line in (watcher / "status").read_text().splitlines() if line.startswith("VmRSS")))
    print("WATCHER", watcher.name, "RSS_KB", rss_kb)
"""


def test_the_watcher_is_small_and_leaves_after_a_clean_end(pytester, docker_engine, wait_until):
    pytester.makepyfile(WATCHER_PROBE)
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 0, process.stdout
    words = next(line for line in process.stdout.splitlines() if "WATCHER" in line).split()
    pid, rss_kb = words[words.index("WATCHER") + 1], int(words[words.index("RSS_KB") + 1])
    assert rss_kb < 30_000, f"the watcher uses {rss_kb} kB while it waits"
    assert wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=15), (
        "the watcher outlived its session"
    )


@pytest.mark.parametrize("builder", ["buildkit", "classic"])
def test_a_tag_you_had_on_the_very_image_a_build_makes_stays_yours(
    pytester, docker_engine, fresh_dockerfile, builder, request
):
    """The same inputs make the same image: when your tag already names it, the session that
    builds it again leaves the tag and the image alone."""
    choice = request.config.stash[SESSION_KEY].builder_choice()
    if builder == "buildkit" and choice.cli is None:
        pytest.skip(f"no docker CLI here builds with BuildKit: {choice.reason}")
    tag = f"test/yours:{uuid.uuid4().hex[:8]}"
    pytester.mkdir("web").joinpath("Dockerfile").write_text(fresh_dockerfile(f"ENV TAG={tag}"))
    pytester.makepyfile(
        f"""
        def test_build(docker_build):
            print("IMAGE", docker_build("web", tag="{tag}").id)
        """
    )
    try:
        yours = pytester.runpytest("-s", "--keep-images", "--docker-builder", builder)  # now it is yours
        yours.assert_outcomes(passed=1)
        again = pytester.runpytest("-s", "--docker-builder", builder)
        again.assert_outcomes(passed=1)

        def image_id(result: pytest.RunResult) -> str:
            return next(line for line in result.outlines if "IMAGE" in line).split("IMAGE ")[1]

        assert image_id(again) == image_id(yours)  # the same image
        assert tag_exists(docker_engine, tag)
    finally:
        docker_engine.client.images.remove(tag, noprune=True)
