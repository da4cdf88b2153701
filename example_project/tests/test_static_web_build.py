"""Building static_web: `docker build -t`, the layer cache, `docker history`, a failing build."""

import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from pytest_dockerimg import BuildError

STATIC_WEB = Path(__file__).parent.parent / "static_web"


def test_build_with_a_tag(static_web):
    """`docker build -t test/static_web:v1 static_web`: an image under that tag, which runs
    nginx in the foreground."""
    assert "test/static_web:v1" in static_web.tags
    assert static_web.attrs["Config"]["Cmd"] == ["nginx", "-g", "daemon off;"]


def test_rebuild_uses_the_cache(static_web, docker_build, layer_cache):
    """Building the same Dockerfile again (`-t test/static_web:v2`) takes every step from the
    layer cache (`---> Using cache`) and gives the same image under a second tag."""
    image = docker_build("../static_web", tag="test/static_web:v2")
    assert all(step.cached for step in image.steps)
    assert image.id == static_web.id
    assert "test/static_web:v2" in image.tags


def test_new_refreshed_at_reruns_the_steps_after_it(
    static_web, docker_build, docker_engine, tmp_path, layer_cache
):
    """Changing `ENV REFRESHED_AT` busts the cache from that step on: `apt-get update` and the
    steps after it run again, the steps before it still come from the cache."""
    context = shutil.copytree(STATIC_WEB, tmp_path / "static_web")
    dockerfile = context / "Dockerfile"
    # A new value on every run: the value of the previous run is in the layer cache too.
    refreshed_at = datetime.now().isoformat()
    dockerfile.write_text(re.sub(r"REFRESHED_AT=\S+", f"REFRESHED_AT={refreshed_at}", dockerfile.read_text()))

    image = docker_build(context, tag="test/static_web:refreshed")

    # Step 3 is `ENV REFRESHED_AT=...`: the steps before it come from the cache, it and the
    # steps after it run again.
    assert all(step.cached for step in image.steps if step.index < 3)
    assert not any(step.cached for step in image.steps if step.index > 3)
    assert "RUN apt-get update" in [step.instruction for step in image.steps if step.index > 3]
    assert image.env["REFRESHED_AT"] == refreshed_at

    # `docker rmi test/static_web:refreshed`: a plain rmi also deletes the layers under the
    # image that nothing else uses, here this one-off REFRESHED_AT and its own apt-get layers.
    # (The plugin's own rmi at the end of the session keeps the layers, as the build cache.)
    docker_engine.client.images.remove(image.id)


def test_history_and_metadata(static_web):
    """`docker history` lists the instruction behind each layer; `docker inspect` shows the
    maintainer label, the environment and the exposed port."""
    created_by = [row.created_by for row in static_web.history()]
    assert any("apt-get install -y nginx" in command for command in created_by)
    # The classic builder writes `EXPOSE 80`, BuildKit `EXPOSE map[80/tcp:{}]`.
    assert any("EXPOSE" in command and "80" in command for command in created_by)

    assert static_web.labels["maintainer"] == "Example Maintainer <maintainer@example.com>"
    assert static_web.env["REFRESHED_AT"] == "2026-11-27"
    assert "80/tcp" in static_web.exposed_ports


def test_typo_fails_the_build(static_web, docker_build, docker_run, tmp_path):
    """`RUN apt-get install -y ngin` (a typo) fails the build with apt-get's exit code 100;
    the error names the step and keeps the last good layer to debug from."""
    context = shutil.copytree(STATIC_WEB, tmp_path / "static_web")
    dockerfile = context / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("install -y nginx", "install -y ngin"))

    with pytest.raises(BuildError) as excinfo:
        docker_build(context, tag="test/static_web:typo")

    error = excinfo.value
    assert error.exit_code == 100
    assert error.step == 5  # the fifth instruction of the Dockerfile
    assert error.instruction == "RUN apt-get install -y ngin"
    assert "E: Unable to locate package ngin" in error.log

    # `docker run -it <last good layer> sh`: the image of the steps before the failing one
    # (after `apt-get update`), where apt knows the package by its right name.
    debug = docker_run(error.last_image_id, command=["sleep", "infinity"])
    result = debug.exec(["apt-cache", "pkgnames", "ngin"])
    assert result.exit_code == 0
    assert "nginx" in result.output.split()
