"""The terminal summary under xdist: the controller adds up what its workers report, and an
image that several workers used counts once."""

from __future__ import annotations


def test_images_used_by_several_workers_count_once(pytester, assert_no_leaks, fresh_dockerfile):
    for name in ("alpha", "beta", "gamma"):
        pytester.mkdir(name).joinpath("Dockerfile").write_text(fresh_dockerfile())
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(6))  # enough for both workers to get some
        def test_uses_every_image(docker_build, n):
            for name in ("alpha", "beta", "gamma"):
                docker_build(name)
        """
    )
    result = pytester.runpytest("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    images = sorted(line.split(":")[0] for line in result.stdout.lines if line.startswith("image "))
    assert images == ["image alpha", "image beta", "image gamma"]
    result.stdout.fnmatch_lines(["3 image(s), 0 container(s); *"])
    assert_no_leaks()
