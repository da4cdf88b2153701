"""A private registry: `docker push` the image to it, `docker pull` it back and run it."""

import requests

from pytest_dockerimg import wait

PAGE = "Hi, I am in your container\n"


def test_push_pull_and_run(static_web, docker_registry, docker_engine, docker_run):
    """`docker tag` + `docker push 127.0.0.1:PORT/test/static_web:v1`, then `docker pull` and
    `docker run` it: it answers the same page."""
    ref = docker_registry.push(static_web, "test/static_web", tag="v1")
    assert ref == f"{docker_registry.address}/test/static_web:v1"
    assert "test/static_web" in docker_registry.catalog()
    assert docker_registry.tags("test/static_web") == ["v1"]

    docker_engine.client.images.remove(ref)  # `docker rmi` the local tag: the pull must fetch it
    pulled = docker_registry.pull(ref)
    assert pulled.id == static_web.id

    web = docker_run(pulled, ports=["80"], wait=wait.http(80))
    assert requests.get(web.url(80)).text == PAGE
