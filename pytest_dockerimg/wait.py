"""Readiness checks (`http`, `tcp`, `log`, `healthy`, `command`) and the one loop that runs them.

The loop polls fast (10 ms, doubling to 50 ms for the first seconds, then backing off), checks on
every round that the container still runs (so an exit is reported at once, with its logs, not at
the timeout), and remembers the checks that passed. A TCP check looks through Docker's userland
proxy, which accepts connections on a published port before anything listens inside.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol, cast

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_delay

from .errors import ContainerExited, DockerImgError, InvalidSpec, NotReady
from .ports import netloc


class ExecResult(NamedTuple):
    """What `Container.exec` returns: the exit code, stdout and stderr interleaved (`output`, as
    a terminal shows them), and each stream on its own."""

    exit_code: int
    output: str
    stdout: str = ""
    stderr: str = ""


class Target(Protocol):
    """What a check needs from a container."""

    @property
    def name(self) -> str: ...

    def address(self, port: int | str) -> tuple[str, int]: ...

    def logs(self) -> str: ...

    def logs_since_start(self) -> str: ...

    def exec(self, cmd: str | Sequence[str]) -> ExecResult: ...

    def state(self) -> dict[str, Any]: ...


class NotYet(Exception):
    """A check did not pass this round; the message says why."""


class Check:
    """A readiness check: `probe` returns when it passes and raises `NotYet` otherwise."""

    description = "check"

    def probe(self, target: Target) -> None:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.description

    def __repr__(self) -> str:
        return f"<wait.{self.description}>"


def _tcp_port(port: int | str) -> int | str:
    text = str(port)
    if "/" in text and not text.endswith("/tcp"):
        raise InvalidSpec(f"readiness checks reach TCP ports only, got {port!r}")
    return port


class _Http(Check):
    def __init__(
        self, port: int | str, path: str, status: int | Iterable[int], contains: str | None, scheme: str
    ) -> None:
        self.port = _tcp_port(port)
        self.path = path if path.startswith("/") else f"/{path}"
        self.statuses = {status} if isinstance(status, int) else set(status)
        self.contains = contains
        self.scheme = scheme
        self.wanted = wanted = "/".join(str(s) for s in sorted(self.statuses))
        extra = f", body containing {contains!r}" if contains is not None else ""
        self.description = f"http({port}, {self.path!r}: status {wanted}{extra})"
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy from the environment between us and the container

    def probe(self, target: Target) -> None:
        host, port = target.address(self.port)
        url = f"{self.scheme}://{netloc(host, port)}{self.path}"
        try:
            response = self._session.get(url, timeout=(1.0, 5.0), verify=False)
        except requests.RequestException as error:
            raise NotYet(f"GET {url}: {type(error).__name__}: {error}") from None
        if response.status_code not in self.statuses:
            raise NotYet(f"GET {url} answered {response.status_code}, expected {self.wanted}")
        if self.contains is not None and self.contains not in response.text:
            raise NotYet(f"GET {url} answered without {self.contains!r}: {response.text[:200]!r}")


class _Tcp(Check):
    # How long an accepted connection must stay open: Docker's userland proxy accepts, fails to
    # reach the container and closes within a millisecond.
    SETTLE_SECONDS = 0.05

    def __init__(self, port: int | str) -> None:
        self.port = _tcp_port(port)
        self.description = f"tcp({port})"

    def probe(self, target: Target) -> None:
        host, port = target.address(self.port)
        try:
            with socket.create_connection((host, port), timeout=1.0) as connection:
                connection.settimeout(self.SETTLE_SECONDS)
                try:
                    if connection.recv(1) == b"":
                        raise NotYet(
                            f"{host}:{port} accepted and closed at once: the port is "
                            "published but nothing listens in the container yet"
                        )
                except socket.timeout:
                    pass  # still open and quiet: a service is there, waiting for us to speak
        except OSError as error:
            raise NotYet(f"connect to {host}:{port}: {error}") from None


class _Log(Check):
    def __init__(self, pattern: str | re.Pattern[str]) -> None:
        self.pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
        self.description = f"log({self.pattern.pattern!r})"

    def probe(self, target: Target) -> None:
        if not self.pattern.search(target.logs_since_start()):
            raise NotYet(f"no log line matches {self.pattern.pattern!r} yet")


class _Healthy(Check):
    description = "healthy()"

    def probe(self, target: Target) -> None:
        health = target.state().get("Health")
        # podman reports {"Status": ""} for a container without a health check.
        if not health or not health.get("Status"):
            raise InvalidSpec(
                f"wait.healthy(): container {target.name} has no HEALTHCHECK; add one to the "
                "image (or pass healthcheck= to docker_run), or use another check"
            )
        status = health.get("Status")
        if status != "healthy":
            last = (health.get("Log") or [{}])[-1]
            output = str(last.get("Output") or "").strip()
            raise NotYet(f"health status is {status}" + (f": {output[:200]}" if output else ""))


class _Command(Check):
    def __init__(self, cmd: str | Sequence[str]) -> None:
        self.cmd = cmd
        self.description = f"command({cmd!r})"

    def probe(self, target: Target) -> None:
        result = target.exec(self.cmd)
        if result.exit_code != 0:
            raise NotYet(f"exit code {result.exit_code}: {result.output.strip()[-200:]}")


def http(
    port: int | str,
    path: str = "/",
    status: int | Iterable[int] = 200,
    contains: str | None = None,
    *,
    scheme: str = "http",
) -> Check:
    """Ready when `GET path` on the published `port` answers `status` (and contains `contains`)."""
    return _Http(port, path, status, contains, scheme)


def tcp(port: int | str) -> Check:
    """Ready when something inside the container accepts connections on `port`."""
    return _Tcp(port)


def log(pattern: str | re.Pattern[str]) -> Check:
    """Ready when the container's output (stdout and stderr) since its last start matches the
    regex `pattern`: after a restart, the previous run's lines do not count."""
    return _Log(pattern)


def healthy() -> Check:
    """Ready when the image's HEALTHCHECK reports healthy."""
    return _Healthy()


def command(cmd: str | Sequence[str]) -> Check:
    """Ready when `cmd`, run inside the container, exits 0."""
    return _Command(cmd)


def as_checks(wait: Check | Iterable[Check] | None) -> list[Check]:
    """The `wait=` argument (a check, several, or None) as a list, validated."""
    if wait is None:
        return []
    checks: list[object] = list(wait) if isinstance(wait, (list, tuple)) else [wait]
    for check in checks:
        if not isinstance(check, Check):
            raise InvalidSpec(
                f"wait= got {check!r}; it takes a check from pytest_dockerimg.wait, or a list of them: "
                'wait=wait.http(80, "/"), wait.tcp(5432), wait.log("ready"), wait.healthy() or '
                'wait.command(["pg_isready"]), e.g. wait=[wait.tcp(5432), wait.log("ready")]'
            )
    return cast(list[Check], checks)


def poll_interval(state: RetryCallState) -> float:
    """10 ms doubling to 50 ms for the first 5 s, then up to 250 ms, then 1 s after 30 s."""
    elapsed = state.seconds_since_start or 0.0
    cap = 0.05 if elapsed < 5 else 0.25 if elapsed < 30 else 1.0
    return float(min(cap, 0.01 * 2 ** (state.attempt_number - 1)))


def wait_until_ready(target: Target, checks: Sequence[Check], timeout: float) -> None:
    """Return once every check has passed; raise `ContainerExited` as soon as the container
    stops, or `NotReady` naming the failing check after `timeout` seconds."""
    pending = list(checks)
    last: dict[str, Any] = {"check": pending[0] if pending else None, "error": "not checked yet"}

    def attempt() -> None:
        state = target.state()
        restarts = int(state.get("RestartCount") or 0)
        last.setdefault("restarts", restarts)
        # A restart policy makes an exit look like "restarting" (Docker), or "running" again with
        # a higher RestartCount (podman; Docker too, between two polls): an exit all the same.
        # Once the container runs again, the engine no longer says how it exited.
        if state.get("Status") in ("exited", "dead", "removing") or state.get("Restarting"):
            raise ContainerExited(target.name, state.get("ExitCode"), target.logs())
        if restarts > last["restarts"]:
            raise ContainerExited(target.name, state.get("ExitCode") or None, target.logs())
        while pending:
            last["check"] = pending[0]
            try:
                pending[0].probe(target)
            except NotYet as error:
                last["error"] = str(error)
                raise
            pending.pop(0)

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=poll_interval,
        retry=retry_if_exception_type(NotYet),
        reraise=True,
    )
    try:
        retrying(attempt)
    except NotYet:
        raise NotReady(target.name, str(last["check"]), timeout, str(last["error"]), target.logs()) from None
    except DockerImgError as error:  # raised here, not from the frames of the retry loop
        raise error.with_traceback(None) from None
