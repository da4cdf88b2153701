"""Running containers on the real engine: `docker run -p` in all its forms, readiness checks
against services that start late, errors that say what went wrong, the `Container` handle,
`docker commit`, and teardown that leaves nothing behind (even when tests fail).

Every image here is a small busybox web server (tests/data/httpd) or a variant of it.
"""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import docker.models.containers
import pytest
import requests
from docker.errors import ImageNotFound

from pytest_dockerimg import ContainerExited, Image, InvalidSpec, NotReady, PortConflict, wait

DATA = Path(__file__).parent.parent / "data"
HTTPD_CONTEXT = DATA / "httpd"
HTTPD_TAG = "pytest-dockerimg-it/httpd:test"
PAGE = "Hi, I am in your container\n"
# The web server, started a second late: before it listens, Docker's userland proxy already
# accepts connections on the published port (and closes them at once).
LATE_HTTPD = ["sh", "-c", "sleep 1; exec httpd -f -v -p 80 -h /www"]
# Loose bound for "ready well before the 30 s default timeout"; exact speed is a benchmark's job.
SOON = 10.0


@pytest.fixture(scope="module")
def httpd(docker_build):
    """`docker build -t pytest-dockerimg-it/httpd:test tests/data/httpd` (relative to this file)."""
    return docker_build("../data/httpd", tag=HTTPD_TAG)


def free_port() -> int:
    """A host port that nothing uses right now (bound to 127.0.0.1:0, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def containers_named(docker_engine, name: str) -> list:
    """`docker ps -a --filter name=NAME`: what the engine has under that name."""
    return docker_engine.client.containers.list(all=True, filters={"name": name})


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=5)


# ---------------------------------------------------------------------------- ports


@pytest.mark.parametrize(
    "spec",
    ["80", "{port}:80", "127.0.0.1:{port}:80", "127.0.0.1::80"],
    ids=["random", "fixed", "interface-fixed", "interface-random"],
)
def test_every_docker_run_p_string_form_serves_the_page(httpd, docker_run, docker_engine, reached_at, spec):
    """`ports=` takes the `docker run -p` strings; each publishes port 80 (on a fixed host port
    where one is given) where the test reaches it, and `url(80)` reaches the page. On a remote
    engine, a port bound to loopback is an error at once: it would land on that host's loopback."""
    port = free_port()
    if docker_engine.reach.remote and spec.startswith("127.0.0.1"):
        with pytest.raises(InvalidSpec, match="lands on the remote host's loopback"):
            docker_run(httpd, ports=[spec.format(port=port)], wait=wait.http(80))
        return
    web = docker_run(httpd, ports=[spec.format(port=port)], wait=wait.http(80))

    if "{port}" in spec:
        assert web.port(80) == port
    host, reached_port = web.address(80)
    assert (host, reached_port) == reached_at(web, 80)
    assert web.url(80) == f"http://{host}:{reached_port}/"
    assert get(web.url(80)).text == PAGE


@pytest.mark.parametrize(
    "ports",
    [{80: None}, {"80/tcp": "{port}"}, {80: ("127.0.0.1", None)}],
    ids=["random", "fixed", "interface-random"],
)
def test_docker_py_port_dicts_serve_the_page(httpd, docker_run, docker_engine, ports):
    """`ports=` also takes docker-py's dict: `{80: None}`, `{"80/tcp": 8080}`,
    `{80: ("127.0.0.1", None)}` (an error at once on a remote engine)."""
    port = free_port()
    ports = {key: port if value == "{port}" else value for key, value in ports.items()}
    if docker_engine.reach.remote and ("127.0.0.1", None) in ports.values():
        with pytest.raises(InvalidSpec, match="lands on the remote host's loopback"):
            docker_run(httpd, ports=ports, wait=wait.http(80))
        return
    web = docker_run(httpd, ports=ports, wait=wait.http(80))

    if port in ports.values():
        assert web.port(80) == port
    assert get(web.url(80, "/index.html")).text == PAGE


@pytest.mark.parametrize("ports", [["80"], {80: None}], ids=["string", "dict"])
def test_ports_bind_where_they_are_reached(httpd, docker_run, docker_engine, reached_at, ports):
    """With no interface given, a port is published on the session's bind host: 127.0.0.1 where
    ports are reached on loopback (not Docker's 0.0.0.0), all interfaces of a remote engine. The
    engine's HostConfig says so, and the page is reached where the plugin says."""
    web = docker_run(httpd, ports=ports, wait=wait.http(80))

    bind_host = docker_engine.reach.bind_host
    bindings = web.attrs["HostConfig"]["PortBindings"]["80/tcp"]
    assert [binding["HostIp"] for binding in bindings] == [bind_host]
    assert web.address(80) == reached_at(web, 80)
    assert get(web.url(80)).text == PAGE


def test_a_loopback_port_does_not_face_the_network(httpd, docker_run, engine_can):
    """Published on 127.0.0.1, a port does not answer on the host's other addresses (the docker0
    gateway is an address of this host, but not loopback: nothing listens there)."""
    engine_can("loopback")
    web = docker_run(httpd, ports=["80"], wait=wait.http(80))

    published = web.attrs["NetworkSettings"]["Ports"]["80/tcp"]
    assert {binding["HostIp"] for binding in published} == {"127.0.0.1"}
    gateway = web.attrs["NetworkSettings"]["Gateway"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((gateway, web.port(80)), timeout=1).close()


def test_udp_port_is_published(httpd, docker_run, docker_engine):
    """`"53/udp"` publishes a UDP port: `port("53/udp")` is its host port."""
    web = docker_run(httpd, ports=["53/udp"])

    assert isinstance(web.port("53/udp"), int)
    assert "53/udp" in web.attrs["HostConfig"]["PortBindings"]
    assert web.attrs["HostConfig"]["PortBindings"]["53/udp"][0]["HostIp"] == docker_engine.reach.bind_host
    assert "80/tcp" not in web.attrs["HostConfig"]["PortBindings"]


def test_publish_all_gives_every_exposed_port_a_random_port_on_the_bind_host(
    docker_build, docker_run, docker_engine
):
    """`publish_all=True` is `docker run -P`: every EXPOSEd port (80, 8080, 5353/udp here) gets
    a random host port on the bind host (127.0.0.1 where ports are reached on loopback)."""
    image = docker_build("../data/multiport")
    assert image.exposed_ports == ["80/tcp", "5353/udp", "8080/tcp"]

    web = docker_run(image, publish_all=True, wait=[wait.http(80), wait.http(8080)])

    bindings = web.attrs["HostConfig"]["PortBindings"]
    assert set(bindings) == {"80/tcp", "8080/tcp", "5353/udp"}
    assert {b["HostIp"] for port in bindings.values() for b in port} == {docker_engine.reach.bind_host}
    assert len({web.port(80), web.port(8080), web.port("5353/udp")}) == 3
    assert get(web.url(80)).text == PAGE
    assert get(web.url(8080)).text == PAGE


def test_fixed_port_held_by_another_process_is_a_port_conflict(httpd, docker_run, docker_engine, engine_can):
    """A fixed host port that a process listens on raises `PortConflict` naming the port, and
    the container that could not start is removed at once."""
    engine_can("loopback")
    name = unique("conflict")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortConflict) as excinfo:
            docker_run(httpd, ports=[f"{port}:80"], name=name)

    assert excinfo.value.port == f"127.0.0.1:{port}"
    assert f"127.0.0.1:{port}" in str(excinfo.value)
    assert containers_named(docker_engine, name) == []


def test_fixed_port_held_by_another_container_is_a_port_conflict(httpd, docker_run, docker_engine):
    """Two containers cannot have the same fixed host port: the second raises `PortConflict`
    naming it and leaves no container behind; the first keeps serving."""
    port = free_port()
    first = docker_run(httpd, ports=[f"{port}:80"], wait=wait.http(80))
    name = unique("conflict")

    with pytest.raises(PortConflict) as excinfo:
        docker_run(httpd, ports={80: port}, name=name)

    assert str(port) in str(excinfo.value)
    assert containers_named(docker_engine, name) == []
    assert get(first.url(80)).text == PAGE


@pytest.mark.parametrize(
    "ports",
    [["eighty"], ["8080:eighty"], ["127.0.0.1:70000:80"], ["80/icmp"], ["localhost:8080:80"]],
)
def test_malformed_port_specs_raise_invalid_spec_naming_the_spec(httpd, docker_run, ports):
    """A port spec that is not a `docker run -p` form raises `InvalidSpec` naming it, before
    anything is created."""
    with pytest.raises(InvalidSpec) as excinfo:
        docker_run(httpd, ports=ports)
    assert repr(ports[0]) in str(excinfo.value)


def test_unpublished_port_says_what_is_published(httpd, docker_run):
    """Asking for a port that was not published names it and lists what was."""
    web = docker_run(httpd, ports=["80"])
    with pytest.raises(InvalidSpec, match=r"port 443/tcp .* is not published \(published: 80/tcp\)"):
        web.port(443)


# ---------------------------------------------------------------------------- readiness


def test_wait_http_waits_for_a_late_web_server(httpd, docker_run):
    """`wait.http(80)` returns once the page answers, however late the server starts."""
    started = time.monotonic()
    web = docker_run(httpd, command=LATE_HTTPD, ports=["80"], wait=wait.http(80, "/", contains="Hi"))
    elapsed = time.monotonic() - started

    assert get(web.url(80)).text == PAGE
    assert 1.0 <= elapsed < SOON


def test_docker_proxy_accepts_before_the_service_listens(httpd, docker_run, engine_can):
    """Why `wait.tcp` needs care: before anything listens in the container, a connect to the
    published port succeeds (Docker's userland proxy accepts) and is closed at once."""
    engine_can("userland_proxy")
    web = docker_run(httpd, command=["sh", "-c", "sleep 3; exec httpd -f -p 80 -h /www"], ports=["80"])

    with socket.create_connection(web.address(80), timeout=1) as connection:
        connection.settimeout(1)
        try:
            first_byte = connection.recv(1)
        except ConnectionResetError:
            first_byte = b""
    assert first_byte == b"", "the proxy should close the connection: nothing listens yet"
    with pytest.raises(requests.ConnectionError):
        get(web.url(80))


def test_wait_tcp_is_not_fooled_by_the_userland_proxy(httpd, docker_run):
    """`wait.tcp(80)` returns only when the server inside listens: an HTTP GET right after it
    succeeds, although the proxy accepted connections from the start."""
    started = time.monotonic()
    web = docker_run(httpd, command=LATE_HTTPD, ports=["80"], wait=wait.tcp(80))
    elapsed = time.monotonic() - started

    assert get(web.url(80)).text == PAGE  # at once, no retry
    assert 1.0 <= elapsed < SOON


def test_wait_tcp_on_a_running_container(httpd, docker_run):
    """`container.wait_for(check)` waits on a container that is already running."""
    web = docker_run(httpd, command=LATE_HTTPD, ports=["80"])
    assert web.wait_for(wait.tcp(80), timeout=SOON) is web
    assert get(web.url(80)).text == PAGE


def test_wait_log_waits_for_a_line(httpd, docker_run):
    """`wait.log(pattern)` returns once the container's output matches the regex."""
    started = time.monotonic()
    worker = docker_run(
        httpd,
        command=["sh", "-c", "echo starting; sleep 1; echo 'ready to serve'; exec sleep 1000"],
        wait=wait.log(r"ready to \w+"),
    )
    elapsed = time.monotonic() - started

    assert worker.logs() == "starting\nready to serve\n"
    assert 1.0 <= elapsed < SOON


def test_wait_healthy_waits_for_the_healthcheck(docker_build, docker_run, engine_can):
    """`wait.healthy()` returns once the image's HEALTHCHECK passes (every second here: the
    engine takes `--interval=1s`)."""
    engine_can("healthcheck")
    image = docker_build("../data/healthcheck")
    assert image.attrs["Config"]["Healthcheck"]["Interval"] == 1_000_000_000  # 1 s, in ns

    started = time.monotonic()
    service = docker_run(image, wait=wait.healthy())
    elapsed = time.monotonic() - started

    health = service.attrs["State"]["Health"]
    assert health["Status"] == "healthy"
    assert health["Log"][-1]["ExitCode"] == 0
    assert service.exec(["test", "-e", "/tmp/ready"]).exit_code == 0
    assert 1.0 <= elapsed < SOON


def test_wait_healthy_without_a_healthcheck_says_so_at_once(httpd, docker_run):
    """`wait.healthy()` on an image without a HEALTHCHECK fails at once, saying so."""
    started = time.monotonic()
    with pytest.raises(InvalidSpec, match="has no HEALTHCHECK"):
        docker_run(httpd, wait=wait.healthy())
    assert time.monotonic() - started < 5


def test_wait_command_waits_until_the_command_succeeds(httpd, docker_run):
    """`wait.command(cmd)` runs `cmd` in the container (`docker exec`) until it exits 0."""
    started = time.monotonic()
    worker = docker_run(
        httpd,
        command=["sh", "-c", "sleep 1; touch /ready; exec sleep 1000"],
        wait=wait.command(["test", "-e", "/ready"]),
    )
    elapsed = time.monotonic() - started

    assert worker.exec(["ls", "/ready"])[:2] == (0, "/ready\n")
    assert 1.0 <= elapsed < SOON


def test_several_checks_must_all_pass(httpd, docker_run):
    """`wait=[...]` takes several checks; the container is ready when every one passed."""
    started = time.monotonic()
    web = docker_run(
        httpd,
        command=["sh", "-c", "sleep 1; echo 'config loaded'; sleep 1; exec httpd -f -v -p 80 -h /www"],
        ports=["80"],
        wait=[
            wait.log("config loaded"),
            wait.tcp(80),
            wait.http(80, "/index.html", contains="your container"),
            wait.command("test -s /www/index.html"),
        ],
    )
    elapsed = time.monotonic() - started

    assert get(web.url(80)).text == PAGE
    assert 2.0 <= elapsed < SOON


def test_container_that_exits_early_raises_container_exited_at_once(httpd, docker_run, docker_engine):
    """A container that exits before it is ready raises `ContainerExited` with its exit code and
    logs as soon as it exits (not after the timeout), and is removed."""
    name = unique("broken")
    started = time.monotonic()
    with pytest.raises(ContainerExited) as excinfo:
        docker_run(
            httpd,
            command=["sh", "-c", "echo broken config >&2; exit 3"],
            ports=["80"],
            wait=wait.http(80),
            name=name,
        )
    elapsed = time.monotonic() - started

    error = excinfo.value
    assert error.exit_code == 3
    assert "broken config" in error.logs
    assert error.name == name
    assert "exited with code 3" in str(error)
    assert "broken config" in str(error)
    assert elapsed < 5
    assert containers_named(docker_engine, name) == []


def test_readiness_timeout_raises_not_ready_naming_the_check(httpd, docker_run, docker_engine):
    """When a check does not pass within `timeout` seconds, `NotReady` names the check, its last
    error and the container's last log lines; the container is removed."""
    name = unique("never-ready")
    started = time.monotonic()
    with pytest.raises(NotReady) as excinfo:
        docker_run(
            httpd,
            command=["sh", "-c", "echo starting up; exec httpd -f -v -p 80 -h /www"],
            ports=["80"],
            wait=wait.http(80, "/health"),
            timeout=1,
            name=name,
        )
    elapsed = time.monotonic() - started

    error = excinfo.value
    assert "http(80, '/health'" in error.check
    assert "answered 404, expected 200" in error.last_error
    assert "starting up" in error.logs
    message = str(error)
    assert "not ready after 1 s" in message
    assert error.check in message
    assert error.last_error in message
    assert "response:404" in message  # the log tail: httpd -v logs each request
    assert 1.0 <= elapsed < 5
    assert containers_named(docker_engine, name) == []


# ---------------------------------------------------------------------------- the Container handle


def test_container_handle(httpd, docker_run, reached_at):
    """A `Container` reaches the service (`port`, `address`, `url`), reads `logs()`, runs
    commands (`exec` -> `(exit_code, output)`), reports `status`, and can be stopped; `attrs`
    is `docker inspect` and `raw` the docker-py object."""
    web = docker_run(httpd, ports=["80"], wait=wait.http(80))

    assert isinstance(web.raw, docker.models.containers.Container)
    assert web.raw.id == web.id
    assert web.attrs["Id"] == web.id
    assert web.attrs["Image"] == httpd.id
    assert web.attrs["Name"] == f"/{web.name}"
    assert web.image is httpd
    assert web.status == "running"

    host, port = web.address(80)
    assert (host, port) == reached_at(web, 80)
    assert web.host == host
    assert web.url(80, "/index.html") == f"http://{host}:{port}/index.html"
    assert get(f"http://{host}:{port}/").text == PAGE
    assert "response:200" in web.logs()

    result = web.exec(["cat", "/www/index.html"])
    assert (result.exit_code, result.output) == (0, PAGE)
    assert web.exec("sh -c 'echo oops >&2; exit 7'") == (7, "oops\n", "", "oops\n")

    started = time.monotonic()
    web.stop(timeout=1)  # httpd as PID 1 ignores SIGTERM: killed after 1 s
    assert time.monotonic() - started < 5
    assert web.status == "exited"


def test_commit_saves_the_container_as_an_image(httpd, docker_run):
    """`commit(repository, tag, message=, author=)` is `docker commit -m ... --author ...`: an
    image with the container's changes, which runs with them."""
    web = docker_run(httpd, ports=["80"], wait=wait.http(80))
    assert web.exec(["sh", "-c", "echo changed > /www/index.html"]).exit_code == 0
    tag = f"v{uuid.uuid4().hex[:8]}"

    image = web.commit(
        "pytest-dockerimg-it/committed",
        tag,
        message="A new custom image",
        author="Tester <tester@example.com>",
    )

    assert isinstance(image, Image)
    assert f"pytest-dockerimg-it/committed:{tag}" in image.tags
    assert image.comment == "A new custom image"
    assert image.author == "Tester <tester@example.com>"
    assert image.id != httpd.id
    assert image.labels["org.example.purpose"] == httpd.labels["org.example.purpose"]  # kept from the image
    changed = docker_run(image, ports=["80"], wait=wait.http(80))
    assert get(changed.url(80)).text == "changed\n"
    assert get(web.url(80)).text == "changed\n"
    # The commit is the newest history row (Docker shows the message there too, podman the base).
    assert image.history()[0].id == image.id


def test_committed_image_is_removed_when_the_session_ends(pytester, docker_engine, assert_no_leaks):
    """A committed image belongs to the session: it is gone once the session ends."""
    ref = f"pytest-dockerimg-it/committed:{uuid.uuid4().hex[:8]}"
    pytester.makepyfile(
        f"""
        from pytest_dockerimg import wait

        def test_commit(docker_build, docker_run):
            web = docker_run(docker_build({str(HTTPD_CONTEXT)!r}), ports=["80"], wait=wait.http(80))
            web.exec(["sh", "-c", "echo committed > /www/index.html"])
            image = web.commit({ref.split(":")[0]!r}, {ref.split(":")[1]!r}, message="m", author="a")
            assert {ref!r} in image.tags
            docker_run({ref!r}, ports=["80"], wait=wait.http(80, contains="committed"))
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    with pytest.raises(ImageNotFound):
        docker_engine.client.images.get(ref)
    assert_no_leaks()


@pytest.mark.parametrize("form", ["Image", "id", "ref"])
def test_docker_run_takes_an_image_an_id_or_a_ref(httpd, docker_run, form):
    """`docker_run` takes the `Image` that `docker_build` returned, an image id, or a tag."""
    image = {"Image": httpd, "id": httpd.id, "ref": HTTPD_TAG}[form]
    web = docker_run(image, ports=["80"], wait=wait.http(80))
    assert web.attrs["Image"] == httpd.id
    assert get(web.url(80)).text == PAGE


@pytest.mark.docker_image("../data/httpd", tag=HTTPD_TAG)
@pytest.mark.docker_container(ports=["80"], wait=wait.http(80))
def test_marker_form(docker_container, docker_image):
    """`@pytest.mark.docker_image(path)` + `@pytest.mark.docker_container(ports=, wait=)`: the
    `docker_container` fixture is that image, running and ready."""
    assert docker_container.image.id == docker_image.id
    assert HTTPD_TAG in docker_image.tags
    assert get(docker_container.url(80)).text == PAGE


# ---------------------------------------------------------------------------- lifetimes, teardown


def test_session_container_serves_two_tests_and_goes_at_session_end(pytester, docker_engine):
    """`docker_run_session` starts a container once for the whole session; it is removed when the
    session ends."""
    pytester.makepyfile(
        f"""
        import pytest, requests
        from pathlib import Path
        from pytest_dockerimg import wait

        @pytest.fixture(scope="session")
        def web(docker_build, docker_run_session):
            return docker_run_session(docker_build({str(HTTPD_CONTEXT)!r}), ports=["80"], wait=wait.http(80))

        def test_one(web):
            Path("first.txt").write_text(web.id)
            assert requests.get(web.url(80)).ok

        def test_two(web):
            assert web.id == Path("first.txt").read_text()
            assert web.status == "running"
            assert requests.get(web.url(80)).ok
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    container_id = (pytester.path / "first.txt").read_text()
    assert container_id
    assert docker_engine.client.containers.list(all=True, filters={"id": container_id}) == []


def test_nothing_leaks_when_tests_fixtures_or_waits_fail(pytester, assert_no_leaks):
    """Containers are removed when a test fails after starting them, when a fixture raises after
    starting one, when a readiness check fails, and at the end of a failing session."""
    pytester.makepyfile(
        f"""
        import pytest
        from pytest_dockerimg import wait

        @pytest.fixture(scope="session")
        def httpd(docker_build):
            return docker_build({str(HTTPD_CONTEXT)!r})

        @pytest.fixture
        def broken(httpd, docker_run):
            docker_run(httpd, command=["sleep", "1000"])
            raise RuntimeError("the fixture fails after starting a container")

        def test_fails_after_starting_containers(httpd, docker_run):
            docker_run(httpd, ports=["80"], wait=wait.http(80))
            docker_run(httpd, command=["sleep", "1000"])
            assert False, "the test fails"

        def test_fixture_raises(broken):
            pass

        def test_wait_fails(httpd, docker_run):
            docker_run(httpd, command=["sh", "-c", "exit 2"], ports=["80"], wait=wait.http(80))

        def test_wait_times_out(httpd, docker_run):
            docker_run(httpd, ports=["80"], wait=wait.http(80, "/nope"), timeout=0.5)

        def test_session_container_then_fail(httpd, docker_run_session):
            docker_run_session(httpd, command=["sleep", "1000"])
            assert False
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=4, errors=1)
    result.stdout.fnmatch_lines(["*ContainerExited*exited with code 2*", "*NotReady*"])
    assert_no_leaks()


def _teardown_seconds(pytester, *args: str) -> float:
    """Run one test whose container (`sleep 1000` as PID 1, which ignores SIGTERM) is still
    running when the test ends; return the seconds from the test's end to the session's end."""
    pytester.makepyfile(
        """
        import time
        from pathlib import Path

        def test_leaves_a_running_container(docker_run):
            docker_run("busybox:latest", command=["sleep", "1000"])
            Path("test_ended").write_text(repr(time.monotonic()))
        """
    )
    result = pytester.runpytest(*args)
    ended = time.monotonic()
    result.assert_outcomes(passed=1)
    return ended - float((pytester.path / "test_ended").read_text())


def test_teardown_kills_by_default(pytester, assert_no_leaks):
    """Teardown kills containers: no 10 s `docker stop` wait for a process that ignores SIGTERM."""
    assert _teardown_seconds(pytester) < 5
    assert_no_leaks()


def test_docker_stop_timeout_stops_gracefully_first(pytester, assert_no_leaks):
    """`--docker-stop-timeout 1` sends SIGTERM and waits a second before the kill."""
    seconds = _teardown_seconds(pytester, "--docker-stop-timeout", "1")
    assert 1.0 <= seconds < 6
    assert_no_leaks()


def test_a_failing_test_reports_its_containers_logs(pytester):
    """A failing test that used containers gets a `docker logs <name>` report section each."""
    pytester.makepyfile(
        """
        from pytest_dockerimg import wait

        def test_fails(docker_run):
            docker_run("busybox:latest", command=["sh", "-c", "echo MARKER-$((6*7)); exec sleep 1000"],
                       wait=wait.log("MARKER"))
            assert False
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*- docker logs test_fails-* -*", "MARKER-42"])


def test_a_fixture_that_fails_reports_its_containers_logs(pytester):
    """A fixture that fails after starting a container (a setup error) gets the same
    `docker logs <name>` report section: that is where the reason usually is."""
    pytester.makepyfile(
        """
        import pytest
        from pytest_dockerimg import wait

        @pytest.fixture
        def service(docker_run):
            docker_run("busybox:latest", command=["sh", "-c", "echo SETUP-$((6*7)); exec sleep 1000"],
                       wait=wait.log("SETUP"))
            raise RuntimeError("the service is misconfigured")

        def test_uses_the_service(service):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*- docker logs test_uses_the_service-* -*", "SETUP-42"])


def test_keep_containers_failed_keeps_the_failing_tests_container(pytester, docker_engine):
    """`--keep-containers failed` keeps the containers of failing tests (and says how to reach
    them: `docker exec -it NAME sh`), and removes those of passing tests."""
    kept, removed = unique("kept"), unique("removed")
    pytester.makepyfile(
        f"""
        def test_passes(docker_run):
            docker_run("busybox:latest", command=["sleep", "1000"], name={removed!r})

        def test_fails(docker_run):
            docker_run("busybox:latest", command=["sleep", "1000"], name={kept!r}, ports=["80"])
            assert False
        """
    )
    try:
        result = pytester.runpytest("--keep-containers", "failed")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                f"kept {kept} (*) from test_*.py::test_fails: docker exec -it {kept} sh; "
                f"80/tcp -> {docker_engine.reach.bind_host}:*"
            ]
        )
        assert [c.name for c in containers_named(docker_engine, kept)] == [kept]
        assert docker_engine.client.containers.get(kept).status == "running"
        assert containers_named(docker_engine, removed) == []
    finally:
        for container in containers_named(docker_engine, kept) + containers_named(docker_engine, removed):
            container.remove(force=True, v=True)


def test_a_crash_looping_container_with_a_restart_policy_is_reported_as_exited(httpd, docker_run):
    """With `restart_policy`, an exit shows as "restarting", not "exited": it still fails at once."""
    started = time.monotonic()
    with pytest.raises(ContainerExited) as excinfo:
        docker_run(
            httpd,
            command=["sh", "-c", "echo crashing; exit 5"],
            restart_policy={"Name": "always"},
            ports=["80"],
            wait=wait.http(80),
        )
    # 5, or None when the engine had already started it again (it then reports no exit code).
    assert excinfo.value.exit_code in (5, None)
    assert "crashing" in excinfo.value.logs
    assert time.monotonic() - started < 5


def test_user_labels_are_kept_and_the_plugins_label_is_reserved(httpd, docker_run):
    """`labels=` (docker-py's dict or list of names) goes on the container next to the plugin's."""
    worker = docker_run(httpd, command=["sleep", "1000"], labels={"team": "web"})
    assert worker.attrs["Config"]["Labels"]["team"] == "web"
    assert worker.attrs["Config"]["Labels"]["pytest-dockerimg"].startswith("kind=container,")
    flagged = docker_run(httpd, command=["sleep", "1000"], labels=["flagged"])
    assert flagged.attrs["Config"]["Labels"]["flagged"] == ""
    with pytest.raises(InvalidSpec, match="'pytest-dockerimg' is reserved"):
        docker_run(httpd, labels={"pytest-dockerimg": "forged"})


def test_a_named_volume_that_the_run_creates_goes_with_the_container(
    pytester, docker_engine, assert_no_leaks
):
    """`volumes={"name": ...}` for a volume that does not exist: the plugin creates it (marked)
    and removes it after the container; a volume that existed before is left alone."""
    mine, theirs = unique("scratch"), unique("theirs")
    docker_engine.client.volumes.create(theirs)
    try:
        pytester.makepyfile(
            f"""
            def test_volumes(docker_run, docker_engine):
                c = docker_run("busybox:latest", command=["sleep", "1000"],
                               volumes={{{mine!r}: {{"bind": "/scratch"}}, {theirs!r}: {{"bind": "/theirs"}}}})
                assert "pytest-dockerimg" in docker_engine.client.volumes.get({mine!r}).attrs["Labels"]
            """
        )
        pytester.runpytest().assert_outcomes(passed=1)
        names = {volume.name for volume in docker_engine.client.volumes.list()}
        assert mine not in names
        assert theirs in names
        assert_no_leaks()
    finally:
        docker_engine.client.volumes.get(theirs).remove(force=True)


def test_an_image_pulled_for_a_run_goes_after_its_container(
    pytester, docker_engine, docker_registry, httpd, engine_tags
):
    """`docker_run(ref)` pulls a ref that is not local; at teardown the container goes first
    (in the background), then the pulled tag: nothing is left, and nothing complains."""
    ref = docker_registry.push(httpd, f"test/{unique('pulled')}", tag="v1")
    docker_engine.client.images.remove(ref, noprune=True)
    pytester.makepyfile(
        f"""
        def test_run_by_ref(docker_run):
            docker_run({ref!r}, command=["sleep", "1000"])
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "cleanup problem" not in result.stdout.str()
    assert ref not in engine_tags()


def test_a_kept_container_outlives_later_sessions(pytester, docker_engine):
    """A container kept by `--keep-containers failed` is the user's: neither the end of its own
    session nor a later session removes it (or the image it runs)."""
    name = unique("kept-for-me")
    pytester.makepyfile(
        f"""
        def test_fails(docker_build, docker_run):
            docker_run(docker_build({str(HTTPD_CONTEXT)!r}), command=["sleep", "1000"], name={name!r})
            assert False
        """
    )
    try:
        pytester.runpytest("--keep-containers", "failed").assert_outcomes(failed=1)
        pytester.makepyfile(
            test_later="def test_uses_docker(docker_run):\n    docker_run('busybox:latest')\n"
        )
        later = pytester.runpytest("test_later.py")
        later.assert_outcomes(passed=1)
        assert "cleanup problem" not in later.stdout.str()
        assert [c.name for c in containers_named(docker_engine, name)] == [name]
    finally:
        for container in containers_named(docker_engine, name):
            container.remove(force=True)
