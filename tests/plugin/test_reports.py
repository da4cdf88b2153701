"""What the user sees: live progress for long builds (and silence for cached ones), the build log
attached to a failing test, and the terminal summary."""

from __future__ import annotations

import re


def test_a_long_build_shows_the_running_step_and_a_cached_one_is_quiet(
    pytester, docker_engine, fresh_dockerfile
):
    pytester.mkdir("slow").joinpath("Dockerfile").write_text(fresh_dockerfile("RUN sleep 3"))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.docker_image("slow")
        def test_slow(docker_image):
            assert docker_image.steps
        """
    )
    cold = pytester.runpytest("-p", "no:cacheprovider")
    cold.assert_outcomes(passed=1)
    cold.stdout.fnmatch_lines(
        ["[[]docker[]] building slow: Step 3/* : RUN sleep 3", "[[]docker[]] built slow in * s"]
    )

    cached = pytester.runpytest("-p", "no:cacheprovider")
    cached.assert_outcomes(passed=1)
    assert "[docker] building" not in cached.stdout.str()
    summary = re.search(r"image slow: [\d.]+ s, (\d+)/(\d+) steps cached", cached.stdout.str())
    assert summary is not None
    assert summary[1] == summary[2]  # every step from the cache


def test_a_failing_build_attaches_the_full_build_log(pytester, docker_engine, fresh_dockerfile):
    noisy = [f"RUN echo noisy-step-{n}" for n in range(25)]
    pytester.mkdir("broken").joinpath("Dockerfile").write_text(
        fresh_dockerfile(*noisy, "RUN echo about to fail && exit 7")
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.docker_image("broken")
        def test_broken(docker_image):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "E   BuildError: docker build of */broken failed at Step 28/28 : RUN echo about to fail && exit 7",
            "*exit code: 7",
            "*last good layer: * (debug it with: docker run --rm -it * sh)",
            "*- docker build log -*",
        ]
    )
    # The message has the tail; the section has everything, from the first step on.
    section = output.split("docker build log")[1]
    assert "noisy-step-0" in section
    assert "pytest_dockerimg/build.py" not in output, "the plugin's own frames should be hidden"


def test_the_summary_says_where_the_time_went(pytester, docker_engine, fresh_dockerfile):
    pytester.mkdir("web").joinpath("Dockerfile").write_text(fresh_dockerfile('CMD ["sleep", "60"]'))
    pytester.makepyfile(
        """
        def test_one(docker_build, docker_run):
            docker_run(docker_build("web"))
            docker_run(docker_build("web"))
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= docker =*",
            "image web: * s, */* steps cached",
            "1 image(s), 2 container(s); build * s, start * s, ready * s, teardown * s",
        ]
    )


def test_no_docker_section_when_docker_was_not_used(pytester):
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "= docker =" not in result.stdout.str()
