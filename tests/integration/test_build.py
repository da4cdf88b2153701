"""Building images from a Dockerfile, as a test suite drives it: `docker build -t`, the layer
cache across sessions, `--no-cache`, a failing step, `.dockerignore`, build args, targets."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from pytest_dockerimg import BuildError, InvalidSpec
from pytest_dockerimg.build import Builder, BuildSpec
from pytest_dockerimg.builders.classic import ClassicBuilder
from pytest_dockerimg.cleanup import remove_image, teardown
from pytest_dockerimg.labels import Identity
from pytest_dockerimg.ledger import KeepPolicy, Ledger


def unique_tag(name: str) -> str:
    return f"pytest-dockerimg-it/{name}:{uuid.uuid4().hex[:8]}"


def test_a_built_image_carries_its_dockerfile_metadata(docker_build):
    """`docker build -t`: tags, labels, ENV, EXPOSE and the history of each layer."""
    tag = unique_tag("httpd")
    image = docker_build("../data/httpd", tag=tag)
    assert tag in image.tags
    assert image.ref == tag
    assert image.labels["org.example.purpose"] == "pytest-dockerimg test image"
    assert image.env["GREETING"] == "Hi, I am in your container"
    assert image.exposed_ports == ["80/tcp"]
    assert image.size > 0
    assert image.created is not None
    history = [row.created_by for row in image.history()]
    assert any("EXPOSE" in line and "80" in line for line in history)  # BuildKit: EXPOSE map[80/tcp:{}]
    assert any('mkdir -p /www && echo "$GREETING"' in line for line in history)
    # Steps are numbered as in the Dockerfile. The classic builder runs every instruction as a
    # step; BuildKit runs FROM, RUN, COPY, ADD and WORKDIR, and only writes the others' config.
    steps = {step.index: step.instruction.split()[0] for step in image.steps}
    assert (steps[1], steps[4]) == ("FROM", "RUN")
    assert set(steps.values()) <= {"FROM", "LABEL", "ENV", "RUN", "EXPOSE", "CMD"}


def test_the_same_spec_is_built_once_per_session(docker_build):
    tag = unique_tag("once")
    first = docker_build("../data/httpd", tag=tag)
    assert docker_build("../data/httpd", tag=tag) is first


def test_a_second_tag_of_the_same_inputs_is_a_fully_cached_build_of_the_same_image(docker_build):
    first = docker_build("../data/httpd", tag=unique_tag("first"))
    second = docker_build("../data/httpd", tag=unique_tag("second"))
    assert second.id == first.id
    assert not second.reused
    assert all(step.cached for step in second.steps)
    assert set(first.reload().tags) >= {first.ref, second.ref}


RECORD_STEPS = """
import json
import pathlib
import pytest

@pytest.mark.docker_image({context!r}, tag={tag!r}{extra})
def test_build(docker_image):
    steps = [[s.instruction, s.cached, s.image_id] for s in docker_image.steps]
    pathlib.Path("steps.json").write_text(json.dumps(steps))
"""


def run_and_read_steps(pytester, *args: str) -> list[tuple[str, bool, str]]:
    """With the classic builder, whose steps are images: its cache is the chain of them."""
    result = pytester.runpytest("-p", "no:cacheprovider", "--docker-builder", "classic", *args)
    result.assert_outcomes(passed=1)
    return [tuple(step) for step in json.loads((pytester.path / "steps.json").read_text())]


def layer_exists(docker_engine, image_id: str) -> bool:
    return any(image["Id"].startswith(f"sha256:{image_id}") for image in docker_engine.api.images(all=True))


def test_a_second_session_hits_the_layer_cache_and_no_build_cache_bypasses_it(
    pytester, docker_engine, write_context, assert_no_leaks, fresh_dockerfile
):
    """The session keeps its images as hidden build cache: the next session's build is cached
    at every step and gives the same image. A --no-build-cache build's layers can never serve
    as cache: they go with its image."""
    context = write_context("cache", fresh_dockerfile("RUN echo two > /two", "ENV DONE=1"))
    pytester.makepyfile(RECORD_STEPS.format(context=str(context), tag=unique_tag("cache"), extra=""))

    cold = run_and_read_steps(pytester)
    assert [cached for _, cached, _ in cold] == [True, False, False, False]  # FROM builds nothing

    warm = run_and_read_steps(pytester)
    assert [step[0] for step in warm] == [step[0] for step in cold]
    assert all(cached for _, cached, _ in warm)
    assert [layer for _, _, layer in warm] == [layer for _, _, layer in cold]  # the very same image
    assert all(layer_exists(docker_engine, layer) for _, _, layer in warm)

    rebuilt = run_and_read_steps(pytester, "--no-build-cache")
    assert [cached for _, cached, _ in rebuilt] == [True, False, False, False]
    assert not any(layer_exists(docker_engine, layer) for _, _, layer in rebuilt[1:])
    assert all(layer_exists(docker_engine, layer) for _, _, layer in warm), "the cache chain stays"
    assert_no_leaks()


def test_editing_the_dockerfile_does_not_pile_up_kept_caches(
    pytester, docker_engine, write_context, fresh_dockerfile, engine_can
):
    """Only the newest build of a spec stays as cache: once the Dockerfile changed, the image
    an earlier session kept for it goes, with the layers nothing else uses, so `docker images`
    shows one `<none>` entry per Dockerfile, however often it is edited."""
    from pytest_dockerimg.cleanup import HOLDS

    engine_can("cache_holder")
    context = write_context("edited", fresh_dockerfile("RUN echo one > /one"))
    pytester.makepyfile(RECORD_STEPS.format(context=str(context), tag=unique_tag("edited"), extra=""))
    before = run_and_read_steps(pytester)
    (context / "Dockerfile").write_text(fresh_dockerfile("RUN echo two > /two"))
    after = run_and_read_steps(pytester)

    def holders(steps: list[tuple[str, bool, str]]) -> list[object]:
        image = docker_engine.api.inspect_image(steps[-1][2])["Id"]
        return docker_engine.api.images(filters={"label": f"{HOLDS}={image}"})

    assert len(holders(after)) == 1
    assert all(layer_exists(docker_engine, layer) for _, _, layer in after)
    assert not any(layer_exists(docker_engine, layer) for _, _, layer in before[1:]), "the old cache stayed"


def test_the_nocache_marker_option_rebuilds_every_step(pytester, write_context, fresh_dockerfile):
    context = write_context("nocache", fresh_dockerfile())
    tag = unique_tag("nocache")
    pytester.makepyfile(RECORD_STEPS.format(context=str(context), tag=tag, extra=""))
    run_and_read_steps(pytester)  # warms the cache
    pytester.makepyfile(RECORD_STEPS.format(context=str(context), tag=tag, extra=", nocache=True"))
    assert [cached for _, cached, _ in run_and_read_steps(pytester)] == [True, False]


def test_a_failing_run_raises_build_error_with_a_runnable_last_good_layer(
    docker_build, docker_run, write_context, fresh_dockerfile
):
    """As with `docker build`, the layers before the failing step stay usable for debugging."""
    context = write_context(
        "failing",
        fresh_dockerfile(
            "RUN echo prepared > /prepared",
            "RUN echo 'E: Unable to locate package ngin' && exit 100",
            "RUN echo never",
        ),
    )
    with pytest.raises(BuildError) as caught:
        docker_build(context)
    error = caught.value
    assert error.step == 4
    assert error.instruction == "RUN echo 'E: Unable to locate package ngin' && exit 100"
    assert error.exit_code == 100
    assert "E: Unable to locate package ngin" in error.log
    assert "E: Unable to locate package ngin" in str(error)
    assert error.last_image_id
    debug = docker_run(error.last_image_id, command=["cat", "/prepared"])
    assert debug.wait_exit(timeout=10) == 0
    assert debug.logs() == "prepared\n"


def test_buildkit_only_syntax_gets_an_error_that_says_so(docker_build, write_context):
    context = write_context("heredoc", "FROM busybox:latest\nRUN <<EOF\necho hi\nEOF\n")
    # Refused before building by the classic builder (which runs nothing for a heredoc) and by
    # the BuildKit built into engines before 23.0; engines of 23.0 and later build it.
    failure = None
    try:
        docker_build(context)
    except BuildError as error:
        failure = str(error)
    if failure is None:
        pytest.skip("engine-specific (heredoc): this engine's builder runs heredocs (Docker 23+, podman)")
    assert "line 2: a heredoc" in failure, failure


def test_dockerignore_keeps_files_out_of_the_context(docker_build, docker_run):
    image = docker_build("../data/ignoring")
    listing = docker_run(image, command=["cat", "/listing"])
    assert listing.wait_exit(timeout=10) == 0
    output = listing.logs()
    assert "app.txt" in output
    assert "private.key" not in output
    assert "today.log" not in output


def test_unchanged_inputs_skip_the_build_and_ignored_files_do_not_count(docker_engine, tmp_path, request):
    """An image kept by an earlier session (--keep-images) with the same inputs (context,
    Dockerfile, args, base) is reused without `docker build`; a changed file builds again."""
    context = tmp_path / "ignoring"
    shutil.copytree(request.path.parent.parent / "data" / "ignoring", context)
    spec = BuildSpec.create(context, tag=unique_tag("reuse"))

    def classic(spec: BuildSpec) -> ClassicBuilder:
        return ClassicBuilder(docker_engine)

    kept = Builder(docker_engine, Identity.create(), Ledger(policy=KeepPolicy(images=True)), classic).build(
        spec
    )
    later = [Ledger(), Ledger()]
    try:
        (context / "private.key").write_text("rotated secret\n")
        (context / "logs" / "today.log").write_text("more noise\n")
        reused = Builder(docker_engine, Identity.create(), later[0], classic).build(spec)
        assert reused.reused
        assert reused.id == kept.id
        (context / "app.txt").write_text("changed\n")
        rebuilt = Builder(docker_engine, Identity.create(), later[1], classic).build(spec)
        assert not rebuilt.reused
        assert rebuilt.id != kept.id
    finally:
        assert teardown(docker_engine.api, later).problems == []
        docker_engine.api.remove_image(spec.tag, noprune=True)  # untag; the image stays if held as cache
        assert remove_image(docker_engine.api, kept.id) == []


def test_build_args_target_and_a_custom_dockerfile(docker_build, docker_run):
    image = docker_build(
        "../data/multistage",
        dockerfile="Dockerfile.test",
        target="test",
        buildargs={"FLAVOUR": "spicy"},
        labels={"team": "web"},
    )
    assert image.env["STAGE"] == "test"
    assert image.labels["team"] == "web"
    assert image.steps[-1].instruction == 'RUN echo "built for tests" > /stage'  # not the label's
    container = docker_run(image, command=["cat", "/flavour", "/stage"])
    assert container.wait_exit(timeout=10) == 0
    assert container.logs() == "flavour=spicy\nbuilt for tests\n"


def test_invalid_build_requests_fail_before_the_engine_is_asked(docker_build):
    with pytest.raises(InvalidSpec, match=r"build context .*no-such-folder does not exist"):
        docker_build("no-such-folder")
    with pytest.raises(InvalidSpec, match="reserved for the plugin"):
        docker_build("../data/httpd", labels={"pytest-dockerimg.inputs": "forged"})


def test_no_tagged_image_is_left_after_the_session(pytester, engine_tags, assert_no_leaks, request):
    tag, committed = unique_tag("gone"), unique_tag("committed")
    pytester.makepyfile(
        f"""
        def test_build_and_commit(docker_build, docker_run):
            image = docker_build({str(request.path.parent.parent / "data" / "httpd")!r}, tag={tag!r})
            container = docker_run(image)
            container.commit({committed.split(":")[0]!r}, {committed.split(":")[1]!r}, message="snapshot")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    tags = engine_tags()
    assert tag not in tags
    assert committed not in tags
    assert_no_leaks()


def test_docker_pull_fails_clearly_when_the_base_cannot_be_pulled(
    pytester, docker_engine, write_context, fresh_dockerfile
):
    """A base image that exists only locally: --docker-pull must fail, and say why."""
    local_base = f"pytest-dockerimg-local/base:{uuid.uuid4().hex[:8]}"
    docker_engine.client.images.get("busybox:latest").tag(*local_base.split(":"))  # podman: repo, tag apart
    try:
        context = write_context("pulled", fresh_dockerfile("RUN true", base=local_base))
        pytester.makepyfile(
            f"""
            def test_build(docker_build):
                docker_build({str(context)!r})
            """
        )
        without_pull = pytester.runpytest()
        without_pull.assert_outcomes(passed=1)
        with_pull = pytester.runpytest("--docker-pull")
        with_pull.assert_outcomes(failed=1)
        with_pull.stdout.fnmatch_lines(
            [
                f"*failed at Step 1/* : FROM {local_base}",
                "*hint: --docker-pull made the engine pull the base image and the pull failed*",
            ]
        )
    finally:
        docker_engine.client.images.remove(local_base, noprune=True)


@pytest.fixture
def git_repository(tmp_path, fresh_dockerfile):
    """A git repository with a Dockerfile, served on loopback by `git daemon`: its git:// URL."""
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    repository = tmp_path / "served" / "web"
    repository.mkdir(parents=True)
    token = uuid.uuid4().hex[:8]
    (repository / "Dockerfile").write_text(fresh_dockerfile(f"RUN echo from-git-{token} > /origin"))
    git = ["git", "-c", "user.email=tests@example.com", "-c", "user.name=tests"]
    subprocess.run([*git, "init", "-q"], cwd=repository, check=True)
    subprocess.run([*git, "add", "Dockerfile"], cwd=repository, check=True)
    subprocess.run([*git, "commit", "-qm", "a Dockerfile"], cwd=repository, check=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={tmp_path / 'served'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"git://127.0.0.1:{port}/web", token
    finally:
        daemon.terminate()
        daemon.wait()


def test_a_git_url_is_a_build_context(docker_build, docker_run, git_repository, engine_can):
    """As `docker build git://...`: the engine clones the repository and builds its Dockerfile."""
    engine_can("git_context")
    engine_can("this_machine")  # the git daemon serves on this machine's loopback
    url, token = git_repository
    image = docker_build(url)
    assert image.steps[-1].instruction == f"RUN echo from-git-{token} > /origin"
    container = docker_run(image, command=["cat", "/origin"])
    assert container.wait_exit(timeout=10) == 0
    assert container.logs() == f"from-git-{token}\n"
