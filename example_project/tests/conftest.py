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
def layer_cache(docker_settings):
    """Skip a test about the layer cache when the run turned the cache off (--no-build-cache,
    or `docker_no_build_cache = true` in the ini file)."""
    if docker_settings.no_build_cache:
        pytest.skip("the layer cache is off (pytest --no-build-cache)")
