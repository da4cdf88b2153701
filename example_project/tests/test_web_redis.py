"""Two containers on one network: a web app and the Redis it keeps its counter in, both built
from Debian packages. The app reaches Redis by the alias `redis` on a network the plugin made:
`docker network create`, `docker run --network NET --network-alias redis`, `docker restart`."""

import pytest
import requests

from pytest_dockerimg import wait


@pytest.fixture(scope="session")
def redis_image(docker_build):
    """`docker build web_redis/redis`: redis-server from Debian."""
    return docker_build("../web_redis/redis", tag="test/web_redis-redis:v1")


@pytest.fixture(scope="session")
def app_image(docker_build):
    """`docker build web_redis/app`: a python3 http.server app using python3-redis."""
    return docker_build("../web_redis/app", tag="test/web_redis-app:v1")


@pytest.fixture
def network(docker_network):
    """`docker network create`: removed after the containers on it, at the end of the test."""
    return docker_network()


@pytest.fixture
def redis(redis_image, network, docker_run):
    """`docker run -d --network NET --network-alias redis ...`, ready when Redis says so."""
    return docker_run(
        redis_image, network=network, aliases=["redis"], wait=wait.log("Ready to accept connections")
    )


@pytest.fixture
def app(app_image, network, redis, docker_run):
    """The app on the same network (it reaches Redis as `redis`), port 8000 published; ready
    when its /health answers, i.e. when it can talk to Redis."""
    return docker_run(app_image, network=network, ports=["8000"], wait=wait.http(8000, "/health"))


def test_the_app_counts_in_redis(app, redis):
    assert requests.get(app.url(8000), timeout=5).text == "hits: 1\n"
    assert requests.get(app.url(8000), timeout=5).text == "hits: 2\n"
    # `docker exec <redis> redis-cli GET hits`
    assert redis.exec(["redis-cli", "GET", "hits"]).stdout == "2\n"


def test_the_app_recovers_when_redis_restarts(app, redis):
    """`docker restart <redis>`: the app answers 503 while Redis is away, and counts again once it
    is back. Redis keeps no snapshot here, so the count starts over."""
    assert requests.get(app.url(8000), timeout=5).text == "hits: 1\n"

    # The wait reads only the new run's log: the first run's "Ready" line does not count.
    redis.restart(wait=wait.log("Ready to accept connections"))

    app.wait_for(wait.http(8000, "/health"))
    assert requests.get(app.url(8000), timeout=5).text == "hits: 1\n"
