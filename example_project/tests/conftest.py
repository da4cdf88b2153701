"""Fixtures shared by the static_web tests."""

import pytest


@pytest.fixture(scope="session")
def static_web(docker_build):
    """`docker build -t test/static_web:v1 static_web`, once for the whole session.

    A relative path starts at this file's folder. The tests marked
    `@pytest.mark.docker_image("../static_web", tag="test/static_web:v1")` get this same
    image: the plugin builds each spec only once per session.
    """
    return docker_build("../static_web", tag="test/static_web:v1")


@pytest.fixture
def layer_cache(request):
    """Skip a test about the layer cache when the run turned the cache off (--no-build-cache)."""
    if request.config.getoption("--no-build-cache"):
        pytest.skip("the layer cache is off (pytest --no-build-cache)")
