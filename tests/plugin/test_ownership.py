"""Who owns what, across sessions: the failures an adversarial run found, each reproduced here
against the real engine. Tags a build took over go back (also after SIGKILL), kept images do
not pile up, what users build on the plugin's images stays theirs, two live sessions building
the same tag each run their own build."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest


def image_id(docker_engine, ref: str) -> str | None:
    try:
        return str(docker_engine.client.images.get(ref).id)
    except Exception:
        return None


@pytest.fixture
def users_tag(docker_engine):
    """A tag the user has on an image of their own (busybox), removed at the end."""
    tag = f"test/users:{uuid.uuid4().hex[:8]}"
    docker_engine.client.images.get("busybox:latest").tag(*tag.split(":"))  # podman: repo, tag apart
    yield tag
    if image_id(docker_engine, tag):
        docker_engine.client.images.remove(tag, noprune=True)


def test_after_a_sigkill_the_watcher_gives_the_users_tag_back(
    pytester, docker_engine, fresh_dockerfile, users_tag, wait_until
):
    busybox = image_id(docker_engine, "busybox:latest")
    pytester.mkdir("web").joinpath("Dockerfile").write_text(fresh_dockerfile())
    pytester.makepyfile(
        f"""
        import pathlib, time

        def test_build_then_hang(docker_build):
            docker_build("web", tag={users_tag!r})
            pathlib.Path("built").write_text("yes")
            time.sleep(120)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: (pytester.path / "built").exists(), timeout=60)
        assert image_id(docker_engine, users_tag) != busybox  # the build has the tag now
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert wait_until(lambda: image_id(docker_engine, users_tag) == busybox, timeout=20), (
            "the watcher did not give the tag back to the user's image"
        )
    finally:
        process.kill()
        process.wait()


def test_keep_images_with_changed_inputs_moves_the_tag_and_does_not_pile_up(
    pytester, docker_engine, fresh_dockerfile
):
    tag = f"test/kept-changes:{uuid.uuid4().hex[:8]}"
    web = pytester.mkdir("web")
    web.joinpath("Dockerfile").write_text(fresh_dockerfile("COPY version /version"))
    pytester.makepyfile(
        f"""
        def test_build(docker_build):
            print("BUILT", docker_build("web", tag={tag!r}).id)
        """
    )
    built = []
    try:
        for version in ("1", "2"):
            web.joinpath("version").write_text(version)
            result = pytester.runpytest("-s", "--keep-images")
            result.assert_outcomes(passed=1)
            built += re.findall(r"BUILT (sha256:\w+)", result.stdout.str())
        first, second = built
        assert first != second
        assert image_id(docker_engine, tag) == second, "the tag names the image of the new inputs"
        assert image_id(docker_engine, first) is None, "the stale kept image went instead of piling up"
    finally:
        for image in built:
            if image_id(docker_engine, image):
                docker_engine.client.images.remove(image, force=True, noprune=True)


def test_what_users_build_on_the_plugins_images_stays_and_no_session_complains(
    pytester, docker_engine, fresh_dockerfile
):
    """A user image that only adds LABEL lines on top of a plugin image survives the session's
    end, and neither that session nor a later one reports a cleanup problem about it."""
    tag = f"test/users-child:{uuid.uuid4().hex[:8]}"
    pytester.mkdir("web").joinpath("Dockerfile").write_text(fresh_dockerfile())
    pytester.makepyfile(
        test_child=f"""
        import io

        def test_build_on_it(docker_build, docker_engine):
            image = docker_build("web")
            docker_engine.client.images.build(
                fileobj=io.BytesIO(f"FROM {{image.id}}\\nLABEL mine=yes\\n".encode()), tag={tag!r}, rm=True
            )
        """
    )
    try:
        first = pytester.runpytest("-p", "no:cacheprovider", "test_child.py")
        first.assert_outcomes(passed=1)
        assert image_id(docker_engine, tag), "the user's image was removed with the plugin's"
        pytester.makepyfile(test_later="def test_later(docker_run):\n    docker_run('busybox:latest')\n")
        later = pytester.runpytest("-p", "no:cacheprovider", "test_later.py")
        later.assert_outcomes(passed=1)
        for result in (first, later):
            assert "cleanup problem" not in result.stdout.str()
    finally:
        if image_id(docker_engine, tag):
            docker_engine.client.images.remove(tag, force=True)


@pytest.mark.parametrize("tagged", ["before the session", "during the session"])
def test_an_image_the_user_has_tagged_stays_theirs(
    pytester, docker_engine, docker_build, fresh_dockerfile, tagged
):
    """The same inputs give the same image: a session's build can end on an image the user
    built and tagged by hand before, or the user can tag the session's image while it runs.
    Either way the session leaves the image and the user's tag alone."""
    users_tag = f"test/users-own:{uuid.uuid4().hex[:8]}"
    pytester.mkdir("web").joinpath("Dockerfile").write_text(fresh_dockerfile())
    pytester.makepyfile(
        test_users_tag=f"""
        def test_build(docker_build, docker_engine):
            image = docker_build("web")
            if {tagged == "during the session"!r}:
                image.raw.tag(*{users_tag!r}.split(":"))
        """
    )
    try:
        if tagged == "before the session":  # as by `docker build -t` of the same inputs
            docker_build(pytester.path / "web").raw.tag(*users_tag.split(":"))
        result = pytester.runpytest("-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        assert image_id(docker_engine, users_tag), "the user's tag went with the session's image"
        assert "cleanup problem" not in result.stdout.str()
    finally:
        if image_id(docker_engine, users_tag):
            docker_engine.client.images.remove(users_tag, force=True)


TWO_SESSIONS = """
import pathlib, time

def wait_for(name):
    deadline = time.monotonic() + 60
    while not pathlib.Path(name).exists():
        assert time.monotonic() < deadline, f"{{name}} never appeared"
        time.sleep(0.05)

def test_{me}(docker_build, docker_run):
    {before}
    docker_build("{me}", tag="{tag}")
    {after}
    container = docker_run("{tag}", command=["cat", "/who"])
    assert container.wait_exit(timeout=30) == 0
    assert container.logs() == "{me}\\n"
    pathlib.Path("{me}-done").write_text("yes")
"""


def test_two_live_sessions_building_the_same_tag_each_run_their_own_build(
    pytester, docker_engine, fresh_dockerfile
):
    tag = f"test/contested:{uuid.uuid4().hex[:8]}"
    for me in ("first", "second"):
        context = pytester.mkdir(me)
        context.joinpath("Dockerfile").write_text(fresh_dockerfile("COPY who /who"))
        context.joinpath("who").write_text(f"{me}\n")
    pytester.makepyfile(
        test_first=TWO_SESSIONS.format(
            me="first",
            tag=tag,
            before="pass",
            after='pathlib.Path("first-built").touch(); wait_for("second-done")',
        ),
        test_second=TWO_SESSIONS.format(me="second", tag=tag, before='wait_for("first-built")', after="pass"),
    )

    def start(name: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"test_{name}.py"],
            cwd=pytester.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    sessions = [start("first"), start("second")]
    try:
        outputs = [session.communicate(timeout=180)[0] for session in sessions]
    finally:
        for session in sessions:
            session.kill()
    for session, output in zip(sessions, outputs):
        assert session.returncode == 0, output
        assert "cleanup problem" not in output
    assert f"the tag {tag} is also built by a live session" in outputs[1]
    assert image_id(docker_engine, tag) is None, "the tag named nothing before: it is gone"


def test_a_failed_wait_reads_as_one_paragraph_without_the_plugins_machinery(pytester, docker_engine):
    pytester.makepyfile(
        """
        from pytest_dockerimg import wait

        def test_never_ready(docker_run):
            docker_run("busybox:latest", command=["sleep", "30"], ports=["80"],
                       wait=wait.http(80), timeout=0.5)

        def test_exits_while_waited_for(docker_run):
            docker_run("busybox:latest", command=["false"], ports=["80"], wait=wait.http(80))
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*NotReady: container * was not ready after 0.5 s: http(80*",
            "*ContainerExited: container * exited with code 1 before it was ready*",
        ],
        consecutive=False,
    )
    assert "tenacity" not in output
    assert "retry_state" not in output
    assert "concurrent/futures" not in output


def test_a_session_container_can_reuse_a_name_an_earlier_test_just_released(pytester, docker_engine):
    """Function-scoped containers go in the background; a session-scoped runner that needs the
    same name waits for that removal instead of failing with a name conflict."""
    name = f"reused-name-{uuid.uuid4().hex[:8]}"
    pytester.makepyfile(
        f"""
        def test_first(docker_run):
            docker_run("busybox:latest", command=["sleep", "30"], name={name!r})

        def test_second(docker_run_session):
            docker_run_session("busybox:latest", command=["sleep", "30"], name={name!r})
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_build_progress_is_shown_under_xdist(pytester, docker_engine, fresh_dockerfile):
    pytester.mkdir("slow").joinpath("Dockerfile").write_text(fresh_dockerfile("RUN sleep 3"))
    pytester.makepyfile(
        """
        def test_build(docker_build):
            docker_build("slow")
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stderr.fnmatch_lines(["[[]docker[]] [[]gw?[]] building slow: Step 3/3 : RUN sleep 3"])


def test_the_effective_bind_host_is_in_docker_settings(pytester, docker_engine):
    pytester.makepyfile(
        """
        import ipaddress

        def test_settings(docker_settings, docker_engine):
            assert docker_settings.bind_host == docker_engine.reach.bind_host  # 127.0.0.1 for a local engine
            ipaddress.ip_address(docker_settings.bind_host)
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_pushing_an_image_that_does_not_exist_says_so(pytester, docker_engine):
    pytester.makepyfile(
        textwrap.dedent(
            """
            import pytest
            from pytest_dockerimg import RegistryError

            def test_push(docker_registry):
                with pytest.raises(RegistryError, match="push: no such image 'test/never-built:v1'"):
                    docker_registry.push("test/never-built:v1")
            """
        )
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize("end_of_job", ["killed", "restarted"])
def test_what_a_session_in_a_killed_job_container_left_is_removed_by_the_next_session(
    pytester, docker_engine, docker_run, wait_until, end_of_job
):
    """A CI job runs pytest in a container of this engine with the socket mounted, and the job
    is killed: its watcher and its ledger die with it, and its processes were on another
    machine. Its containers are labelled with the job container, whose state is the session's
    liveness: while the job runs nothing of it is touched; once it is gone (or restarted, a new
    job), the next session on the engine removes them."""
    from docker.errors import NotFound

    from pytest_dockerimg.labels import LABEL, Mark, container_key, new_session_id

    api = docker_engine.client.api
    job = docker_run("busybox:latest", command=["sleep", "300"])
    mark = Mark(
        "container",
        new_session_id(),
        host="ci-job/0badf00d",  # a machine that is not this one
        owner=57,
        started=1234,
        container=container_key(api.inspect_container(job.id)),
    )
    left = api.create_container("busybox:latest", ["sleep", "300"], labels={LABEL: mark.value()})["Id"]
    try:
        api.start(left)
        pytester.makepyfile("def test_uses_docker(docker_run):\n    docker_run('busybox:latest')\n")
        pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
        assert api.inspect_container(left)["State"]["Running"], "a live job's container was touched"

        if end_of_job == "killed":
            api.kill(job.id)
            assert wait_until(lambda: not api.inspect_container(job.id)["State"]["Running"], 10)
        else:
            api.restart(job.id, timeout=0)
        pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
        assert not api.containers(all=True, filters={"id": left}), "the dead job's container stayed"
    finally:
        with contextlib.suppress(NotFound):
            api.remove_container(left, force=True)


def test_a_container_names_the_container_the_tests_run_in(docker_engine, docker_run):
    """Run on the host, nothing; run in a container of the engine (the in-container matrix
    engine), that container, as the session's liveness for every later session."""
    from pytest_dockerimg.labels import LABEL, Mark

    container = docker_run("busybox:latest", command=["sleep", "30"])
    mark = Mark.of(container.attrs["Config"]["Labels"])
    assert mark is not None
    assert mark.container == docker_engine.reach.container
    assert container.attrs["Config"]["Labels"][LABEL].endswith(f",in={mark.container}") == bool(
        mark.container
    )
    if docker_engine.reach.own_container:
        assert mark.container.startswith(docker_engine.reach.own_container[:12] + ".")
