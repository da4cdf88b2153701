"""Running static_web: `docker run -d -p 80`, `-p 127.0.0.1::80`, `-P`, and `docker commit`."""

import pytest
import requests

from pytest_dockerimg import wait

PAGE = "Hi, I am in your container\n"


@pytest.mark.docker_image("../static_web", tag="test/static_web:v1")
@pytest.mark.docker_container(ports=["80"], wait=wait.http(80))
def test_random_host_port(docker_container):
    """`docker run -d -p 80 test/static_web:v1`: container port 80 on a random host port
    (on 127.0.0.1, the plugin's default interface), reached once nginx answers."""
    response = requests.get(docker_container.url(80))
    assert response.status_code == 200
    assert response.text == PAGE


def test_interface_and_random_port(static_web, docker_run, docker_engine):
    """`docker run -d -p 127.0.0.1::80`: a random host port on the interface given. (A remote
    engine's loopback is not this machine's: there, name all its interfaces, 0.0.0.0.)"""
    interface = "127.0.0.1" if docker_engine.local else "0.0.0.0"
    web = docker_run(static_web, ports=[f"{interface}::80"], wait=wait.http(80))
    assert web.attrs["HostConfig"]["PortBindings"]["80/tcp"][0]["HostIp"] == interface
    host, port = web.address(80)
    assert requests.get(f"http://{host}:{port}/").text == PAGE


def test_publish_all_exposed_ports(static_web, docker_run):
    """`docker run -d -P`: every port the Dockerfile EXPOSEs (here 80) on a random host port."""
    web = docker_run(static_web, publish_all=True, wait=wait.http(80))
    assert requests.get(web.url(80)).text == PAGE


def test_commit_a_changed_container(static_web, docker_run):
    """`docker commit -m "..." --author "..."`: a container's changes saved as a new image,
    which runs with the change."""
    web = docker_run(static_web, ports=["80"], wait=wait.http(80))
    assert web.exec(["sh", "-c", "echo changed > /var/www/html/index.html"]).exit_code == 0

    image = web.commit(
        "test/static_web",
        "changed",
        message="A new custom image",
        author="Example Maintainer <maintainer@example.com>",
    )
    assert image.comment == "A new custom image"
    assert image.author == "Example Maintainer <maintainer@example.com>"

    changed = docker_run(image, ports=["80"], wait=wait.http(80))
    assert requests.get(changed.url(80)).text == "changed\n"
