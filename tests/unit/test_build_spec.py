"""Build specs are validated before anything reaches the engine, with errors that name the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dockerimg.build import BuildSpec, spec_from_marker
from pytest_dockerimg.errors import InvalidSpec


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "Dockerfile").write_text("FROM busybox\n")
    (tmp_path / "web" / "Dockerfile.test").write_text("FROM busybox\n")
    return tmp_path


def test_paths_are_relative_to_the_base_dir(project):
    spec = BuildSpec.create("web", base_dir=project, tag="test/web:v1", buildargs={"N": 1})
    assert spec.context == str((project / "web").resolve())
    assert spec.buildargs == (("N", "1"),)
    assert spec.name == "test/web:v1"
    assert spec.dockerfile_path == project / "web" / "Dockerfile"


def test_remote_contexts_are_passed_through():
    spec = BuildSpec.create("https://github.com/example/web.git#main")
    assert spec.remote
    assert spec.context == "https://github.com/example/web.git#main"


@pytest.mark.parametrize(
    ("path", "options", "message"),
    [
        ("missing", {}, "build context .*missing does not exist \\(relative paths start at"),
        ("web/Dockerfile", {}, "is not a folder"),
        ("web", {"dockerfile": "Dockerfile.prod"}, "no Dockerfile at .*Dockerfile.prod$"),
        ("web", {"tag": "Test/Web"}, "invalid tag 'Test/Web'"),
        ("web", {"buildargs": ["A=1"]}, "buildargs must be a dict"),
        ("web", {"buildargs": {"A": None}}, "buildargs\\['A'\\] must be a string"),
        ("web", {"labels": {"pytest-dockerimg": "x"}}, "reserved for the plugin"),
        ("web", {"nocache": "yes"}, "nocache must be True or False"),
        ("web", {"target": ""}, "target must be the name of a build stage"),
        (42, {}, "must be a folder path or a git URL"),
        ("web", {"secrets": ["token"]}, "secrets must be a dict of secret ids to file paths"),
        ("web", {"secrets": {"my token": "web/Dockerfile"}}, "secrets: ids are names of letters"),
        ("web", {"secrets": {"token": "missing.txt"}}, "secrets\\['token'\\]: no file at .*missing.txt"),
        ("web", {"platform": "arm64"}, "platform must be one platform as os/arch"),
        ("web", {"platform": "linux/amd64,linux/arm64"}, "platform must be one platform"),
    ],
)
def test_bad_specs_are_named(project, path, options, message):
    with pytest.raises(InvalidSpec, match=message):
        BuildSpec.create(path, base_dir=project, **options)


def test_secrets_are_files_relative_to_the_test_and_platform_is_one_platform(project):
    (project / "token.txt").write_text("s3cret")
    spec = BuildSpec.create(
        "web", base_dir=project, secrets={"token": "token.txt"}, platform="linux/arm64/v8"
    )
    assert spec.secrets == (("token", str(project / "token.txt")),)
    assert spec.platform == "linux/arm64/v8"


def test_a_missing_default_dockerfile_suggests_dockerfile_option(project):
    (project / "empty").mkdir()
    with pytest.raises(InvalidSpec, match="pass dockerfile= to use another file"):
        BuildSpec.create("empty", base_dir=project)


def test_marker_arguments(project):
    assert (
        spec_from_marker(("web",), {"dockerfile": "Dockerfile.test"}, project).dockerfile == "Dockerfile.test"
    )
    assert spec_from_marker((), {"path": "web"}, project).context.endswith("web")
    with pytest.raises(
        InvalidSpec, match="unknown argument\\(s\\) tga; docker_image takes path and dockerfile"
    ):
        spec_from_marker(("web",), {"tga": "x"}, project)
    with pytest.raises(InvalidSpec, match="takes one build context path"):
        spec_from_marker((), {}, project)


def test_equal_specs_are_one_build():
    assert BuildSpec.create("https://example.com/a.git", tag="a:1") == BuildSpec.create(
        "https://example.com/a.git", tag="a:1"
    )
    assert (
        BuildSpec.create("https://example.com/a.git").key
        != BuildSpec.create("https://example.com/a.git", nocache=True).key
    )
