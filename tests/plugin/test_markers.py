"""Markers: registered, validated at collection (a bad marker fails the tests that carry it,
naming the test, the argument and the fix, while the others run), and the closest marker wins."""

from __future__ import annotations

import pytest


def test_markers_are_registered(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.docker_image(path, *, dockerfile=None, tag=None, *",
            "@pytest.mark.docker_container(*, ports=None*",
        ]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            'docker_image("web", tga="x:1")',
            "unknown argument(s) tga; docker_image takes path and dockerfile, tag,*",
        ),
        ('docker_image("nowhere")', "build context */nowhere does not exist (relative paths start at *"),
        ('docker_image("web", dockerfile="Dockerfile.prod")', "no Dockerfile at */web/Dockerfile.prod"),
        ('docker_image("web", tag="Web:Latest")', "invalid tag 'Web:Latest'*"),
        ("docker_image()", "docker_image takes one build context path*"),
        ('docker_container("80")', "docker_container takes keyword arguments only*"),
        ('docker_container(ports=["eighty"])', "port spec 'eighty' is not a docker run -p form*"),
        ("docker_container(portz=[80])", "unknown keyword argument(s) portz; docker_run takes ports*"),
        (
            'docker_container(wait="http://x")',
            "wait= got 'http://x'; it takes a check from pytest_dockerimg.wait*",
        ),
        ("docker_container(wait=5)", "wait= got 5; it takes a check from pytest_dockerimg.wait*"),
        ('docker_container(volumes={"/tmp": 5})', "volumes= takes a list of*; got '/tmp': 5"),
        ('docker_container(labels={"pytest-dockerimg": "x"})', "labels=: 'pytest-dockerimg' is reserved*"),
    ],
)
def test_a_bad_marker_fails_its_test_and_the_others_run(pytester, marker, message):
    pytester.mkdir("web").joinpath("Dockerfile").write_text("FROM busybox:latest\n")
    pytester.makepyfile(
        test_bad=f"""
        import pytest

        def test_fine():
            pass

        @pytest.mark.{marker}
        def test_marked(docker_image):
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*invalid docker marker on test_bad.py::test_marked: {message}"])


def test_every_bad_marker_of_a_run_is_reported(pytester):
    pytester.makepyfile(
        test_one="""
        import pytest

        @pytest.mark.docker_image("nowhere")
        def test_first(docker_image):
            pass
        """,
        test_two="""
        import pytest

        @pytest.mark.docker_container(portz=[80])
        def test_second(docker_container):
            pass

        def test_fine():
            pass
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "invalid docker marker on test_one.py::test_first: build context */nowhere does not exist*",
            "invalid docker marker on test_two.py::test_second: unknown keyword argument(s) portz*",
            "ERROR test_one.py::test_first - Failed: invalid docker marker*",
            "ERROR test_two.py::test_second - Failed: invalid docker marker*",
        ],
        consecutive=False,
    )


def test_docker_image_without_a_marker_is_a_setup_error_that_says_so(pytester, docker_engine):
    pytester.makepyfile(
        """
        def test_forgot_the_marker(docker_image):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_forgot_the_marker uses the docker_image fixture but has no @pytest.mark.docker_image(path) marker*"
        ]
    )


def test_the_closest_marker_wins_and_paths_start_at_the_test_file(pytester, docker_engine):
    for name, greeting in (("module_web", "module"), ("class_web", "class"), ("function_web", "function")):
        pytester.mkdir(name).joinpath("Dockerfile").write_text(
            f"FROM busybox:latest\nENV GREETING={greeting}\n"
        )
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.docker_image("module_web")

        def test_module_marker(docker_image):
            assert docker_image.env["GREETING"] == "module"

        @pytest.mark.docker_image("class_web")
        class TestClass:
            def test_class_marker(self, docker_image):
                assert docker_image.env["GREETING"] == "class"

            @pytest.mark.docker_image("function_web")
            def test_function_marker(self, docker_image):
                assert docker_image.env["GREETING"] == "function"
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)
