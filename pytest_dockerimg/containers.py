"""Containers: `Runner.run` does `docker run -d` (create, track, start, wait until ready) and
`Container` is the handle a test uses to reach the service, read logs, exec, copy files, commit,
stop, start and restart."""

from __future__ import annotations

import io
import math
import re
import shutil
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, cast

import requests
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import (  # type: ignore[attr-defined]  # the last one: not in the stubs
    RUN_CREATE_KWARGS,
    RUN_HOST_CONFIG_KWARGS,
    _create_container_args,
)
from docker.models.containers import Container as RawContainer

from .cleanup import Reaper, remove_container
from .engine import Engine
from .errors import DockerImgError, InvalidSpec, PortConflict
from .images import Image
from .labels import LABEL, Identity, scope_prefix
from .ledger import Ledger
from .networks import Network, endpoint_options
from .ports import PortBinding, exposed_bindings, netloc, parse_ports, to_docker_py
from .reach import is_loopback
from .stats import Stats
from .tags import full_tag, image_of, pull_recorded, record_tag
from .wait import Check, ExecResult, as_checks, wait_until_ready

_RUN_KWARGS = set(RUN_CREATE_KWARGS) | set(RUN_HOST_CONFIG_KWARGS) | {"networking_config"}
_HANDLED = {
    "ports",
    "publish_all_ports",
    "command",
    "environment",
    "volumes",
    "name",
    "detach",
    "remove",
    "auto_remove",
    "stdout",
    "stderr",
    "stream",
    "image",
}
# "Bind for 127.0.0.1:8080 failed: port is already allocated" (another container has it) or
# "listen tcp4 127.0.0.1:8080: bind: address already in use" (another process has it).
_PORT_IN_USE = re.compile(
    r"(?:Bind for |listen \w+ )(?P<address>\S+?):? (?:failed|bind: address already in use)"
)
_WILDCARDS = {"", "0.0.0.0", "::"}
_NEVER = "0001-01-01T00:00:00Z"
# How much of a container's log goes into a test report.
REPORT_LINES = 200
REPORT_CHARS = 20_000


def _nanoseconds(timestamp: str) -> int:
    """An engine timestamp (RFC 3339, up to nanoseconds: `2026-12-06T13:57:19.194058061Z`) as
    integer nanoseconds since the epoch; 0 for Docker's "never" (`0001-01-01T00:00:00Z`)."""
    if not timestamp or timestamp.startswith("0001-"):
        return 0
    whole, _, fraction = timestamp.rstrip("Z").partition(".")
    seconds = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])


def _text(data: object) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or "")


class _LogCursor:
    """The output of one run of a container (from one start on), read incrementally: each poll
    asks the engine only for what came after the last line seen."""

    def __init__(self, started_at: str, after_ns: int) -> None:
        self.started_at = started_at
        self.after_ns = after_ns  # lines at or before this belong to an earlier run
        self.last_ns = 0
        self.seen_at_last = 0  # lines already taken with timestamp == last_ns
        self.chunks: list[str] = []

    def read(self, api: Any, container_id: str) -> str:
        since = max(self.after_ns, self.last_ns) / 1e9 - 0.001
        # `since` is a float in docker-py (microseconds at best): ask from a millisecond earlier
        # and drop what was already taken by its nanosecond timestamp.
        data = api.logs(
            container_id, stdout=True, stderr=True, timestamps=True, since=since if since > 0 else None
        )
        skip_at_last = self.seen_at_last
        for line in _text(data).splitlines(keepends=True):
            stamp, _, rest = line.partition(" ")
            try:
                at = _nanoseconds(stamp)
            except ValueError:  # the rest of a long line, written without a new timestamp
                self.chunks.append(line)
                continue
            if at <= self.after_ns or at < self.last_ns:
                continue
            if at == self.last_ns and skip_at_last:
                skip_at_last -= 1
                continue
            if at == self.last_ns:
                self.seen_at_last += 1
            else:
                self.last_ns, self.seen_at_last, skip_at_last = at, 1, 0
            self.chunks.append(rest)
        return "".join(self.chunks)


def capped_log(text: str, how_to_see_all: str, lines: int = REPORT_LINES, chars: int = REPORT_CHARS) -> str:
    """The last `lines` lines of `text` (at most `chars` characters), with a first line saying
    what was left out and `how_to_see_all`."""
    kept = text.splitlines()[-lines:]
    shown = "\n".join(kept)
    if len(shown) > chars:
        shown = shown[-chars:].partition("\n")[2] or shown[-chars:]
    if shown == text.rstrip("\n"):
        return text
    return f"[log cut to its last {len(shown.splitlines())} lines; {how_to_see_all}]\n{shown}\n"


def check_run_kwargs(run_kwargs: Mapping[str, Any]) -> None:
    """Reject what `docker_run` cannot pass on to docker-py, naming the argument."""
    unknown = sorted(set(run_kwargs) - _RUN_KWARGS - _HANDLED)
    if unknown:
        raise InvalidSpec(
            f"unknown keyword argument(s) {', '.join(unknown)}; docker_run takes ports, "
            "publish_all, command, environment, volumes, wait, name, timeout, network, aliases "
            "and the keyword arguments of docker-py's containers.run"
        )
    handled = sorted(set(run_kwargs) & _HANDLED)
    if handled:
        raise InvalidSpec(
            f"docker_run manages {', '.join(handled)} itself; use ports=, "
            "publish_all=, command=, environment=, volumes= or name= instead"
        )


def _user_labels(labels: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """docker-py's `labels=` (a dict, or a list of names), checked for the plugin's own key."""
    if labels is None:
        return {}
    pairs = labels.items() if isinstance(labels, Mapping) else [(name, "") for name in labels]
    result = {}
    for key, value in pairs:
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidSpec(f"labels= takes names and string values, got {key!r}: {value!r}")
        if key == LABEL:
            raise InvalidSpec(f"labels=: {LABEL!r} is reserved for the plugin's own label")
        result[key] = value
    return result


def normalize_volumes(volumes: object) -> dict[str, dict[str, str]] | list[str] | None:
    """`volumes=` as docker-py takes it: `["name:/data", "/host:/data:ro"]`, or a dict of host
    path or volume name to `{"bind": "/data", "mode": "rw"}` or, shorter, to `"/data"` or
    `"/data:ro"`. Anything else is an error naming the accepted forms."""
    forms = (
        'volumes= takes a list of "SOURCE:/container/path[:ro]" strings or a dict '
        '{SOURCE: "/container/path[:ro]"} or {SOURCE: {"bind": "/container/path", "mode": "rw"}}'
    )
    if volumes is None:
        return None
    if isinstance(volumes, (list, tuple)):
        for volume in volumes:
            if not isinstance(volume, str) or ":" not in volume:
                raise InvalidSpec(f"{forms}; got {volume!r} in the list")
        return list(volumes)
    if not isinstance(volumes, Mapping):
        raise InvalidSpec(f"{forms}; got {volumes!r}")
    result = {}
    for source, target in volumes.items():
        if isinstance(target, str) and target.startswith("/"):
            path, _, mode = target.partition(":")
            target = {"bind": path, "mode": mode or "rw"}
        if not isinstance(source, str) or not isinstance(target, Mapping) or "bind" not in target:
            raise InvalidSpec(f"{forms}; got {source!r}: {target!r}")
        result[source] = {"bind": str(target["bind"]), "mode": str(target.get("mode", "rw"))}
    return result


def check_run_spec(kwargs: Mapping[str, Any], bind_host: str) -> None:
    """Validate `docker_run` / `docker_container` keyword arguments without touching the engine."""
    known = {
        "ports",
        "publish_all",
        "command",
        "environment",
        "volumes",
        "wait",
        "name",
        "timeout",
        "network",
        "aliases",
    }
    check_run_kwargs({key: value for key, value in kwargs.items() if key not in known})
    _user_labels(kwargs.get("labels"))
    parse_ports(kwargs.get("ports"), bind_host)
    as_checks(kwargs.get("wait"))
    normalize_volumes(kwargs.get("volumes"))
    if not isinstance(kwargs.get("publish_all", False), bool):
        raise InvalidSpec(f"publish_all must be True or False, got {kwargs['publish_all']!r}")


class Container:
    """A running container started by the plugin. `.raw` is the docker-py object."""

    def __init__(
        self,
        raw: RawContainer,
        engine: Engine,
        image: Image,
        *,
        default_timeout: float,
        stop_timeout: float = 0.0,
        ledger: Ledger | None = None,
    ) -> None:
        self.raw = raw
        self.engine = engine
        self.image = image
        self.default_timeout = default_timeout
        self.stop_timeout = stop_timeout
        self._ledger = ledger
        self._cursor: _LogCursor | None = None

    def __repr__(self) -> str:
        return f"<Container {self.name} {self.id[:12]} from {self.image.ref}>"

    @property
    def id(self) -> str:
        return str(self.raw.id)

    @property
    def name(self) -> str:
        return str(self.raw.name)

    @property
    def attrs(self) -> dict[str, Any]:
        return self.raw.attrs

    @property
    def host(self) -> str:
        """Where this container's ports are reached: the engine's host, or (when the tests run
        in a container of the same engine) this container's address on the shared network."""
        return self._network_address() or self.engine.host

    def _network_address(self) -> str | None:
        """The container's address on the network it shares with the test process, if any."""
        network = self.engine.reach.network
        if network is None:
            return None
        networks = (self.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        if not (networks.get(network) or {}).get("IPAddress"):
            self.raw.reload()
            networks = (self.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        return (networks.get(network) or {}).get("IPAddress") or None

    @property
    def status(self) -> str:
        """The current status (`running`, `exited`, ...), read from the engine."""
        return str(self.state().get("Status", "unknown"))

    def state(self) -> dict[str, Any]:
        """`docker inspect`'s State, read now, with the container's `RestartCount`."""
        self.raw.reload()
        state = dict(self.attrs.get("State") or {})
        state.setdefault("RestartCount", self.attrs.get("RestartCount") or 0)
        return state

    def reload(self) -> Container:
        self.raw.reload()
        return self

    def _bindings(self, port: int | str) -> tuple[str, list[dict[str, str]]]:
        key = str(port) if "/" in str(port) else f"{port}/tcp"
        published = (self.attrs.get("NetworkSettings") or {}).get("Ports") or {}
        if not published.get(key):
            self.raw.reload()
            published = (self.attrs.get("NetworkSettings") or {}).get("Ports") or {}
        bindings = published.get(key) or []
        if not bindings:
            shown = ", ".join(k for k, v in sorted(published.items()) if v) or "none"
            raise InvalidSpec(
                f"port {key} of container {self.name} is not published (published: {shown}); "
                f'pass ports=["{port}"] or publish_all=True'
            )
        # Prefer IPv4: bound to all interfaces, Docker gives 0.0.0.0 and :: different host ports.
        return key, sorted(bindings, key=lambda b: ":" in b.get("HostIp", ""))

    def port(self, port: int | str) -> int:
        """The host port published for container `port` (`80`, `"80/tcp"`, `"53/udp"`)."""
        _, bindings = self._bindings(port)
        return int(bindings[0]["HostPort"])

    def address(self, port: int | str) -> tuple[str, int]:
        """`(host, port)` to reach container `port` from the test: the published port where the
        engine publishes it (see `pytest_dockerimg.reach`), or the container's own address and
        port on the network it shares with the test process's container."""
        _, bindings = self._bindings(port)
        shared = self._network_address()
        if shared is not None:
            return shared, int(str(port).partition("/")[0])
        binding = bindings[0]
        host_ip = binding.get("HostIp", "")
        host = self.engine.host if host_ip in _WILDCARDS or not self.engine.local else host_ip
        return host, int(binding["HostPort"])

    def url(self, port: int | str, path: str = "/", scheme: str = "http") -> str:
        host, host_port = self.address(port)
        return f"{scheme}://{netloc(host, host_port)}{path if path.startswith('/') else '/' + path}"

    def published(self) -> list[str]:
        """The published ports, as `docker port` shows them: `80/tcp -> 127.0.0.1:32768`."""
        ports = (self.attrs.get("NetworkSettings") or {}).get("Ports") or {}
        return [
            f"{port} -> {binding['HostIp']}:{binding['HostPort']}"
            for port, bindings in sorted(ports.items())
            for binding in bindings or []
        ]

    def logs(self, stdout: bool = True, stderr: bool = True, *, tail: int | None = None) -> str:
        """What the container wrote so far, over all its runs (`docker logs`): stdout and stderr
        interleaved, or only one of them; with `tail`, only the last `tail` lines."""
        try:
            data = self.engine.api.logs(self.id, stdout=stdout, stderr=stderr, tail=tail or "all")
        except NotFound:
            return ""
        return _text(data)

    def logs_since_start(self) -> str:
        """What the container wrote (stdout and stderr) since its last start, as `wait.log`
        reads it: output of earlier runs (before a `restart()`) is left out. Read incrementally,
        so polling a chatty container does not download its whole log each time."""
        state = self.attrs.get("State") or {}
        started_at = str(state.get("StartedAt") or "")
        if self._cursor is None or self._cursor.started_at != started_at:
            # A run's first lines can be stamped before its StartedAt (the process writes before
            # the engine records the start); the previous run ended at FinishedAt.
            finished = _nanoseconds(str(state.get("FinishedAt") or _NEVER))
            after = finished if finished and finished <= _nanoseconds(started_at) else 0
            self._cursor = _LogCursor(started_at, after)
        try:
            return self._cursor.read(self.engine.api, self.id)
        except NotFound:
            return ""

    def report_log(self, how_to_see_all: str) -> str:
        """The end of the log for a test report: the last 200 lines (at most 20 kB), with a line
        saying what was left out and `how_to_see_all`. Only that tail is downloaded."""
        return capped_log(self.logs(tail=REPORT_LINES + 1), how_to_see_all)

    def exec(
        self,
        cmd: str | Sequence[str],
        *,
        user: str | None = None,
        environment: Mapping[str, str] | Sequence[str] | None = None,
        workdir: str | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """`docker exec [-u USER] [-e K=V] [-w DIR] CONTAINER CMD`: the exit code, the output
        (stdout and stderr interleaved, as a terminal shows them) and each stream on its own.
        Waits at most `timeout` seconds (default: the readiness timeout, --docker-timeout), then
        raises; the command itself goes on in the container until it ends or the container goes."""
        limit = self.default_timeout if timeout is None else timeout
        try:
            exec_id = self.engine.api.exec_create(
                self.id,
                cmd if isinstance(cmd, str) else [str(part) for part in cmd],
                user=user or "",
                environment=cast(Any, environment),
                workdir=workdir,
            )["Id"]
            frames = self.engine.api.exec_start(exec_id, stream=True, demux=True)
        except APIError as error:
            raise DockerImgError(f"exec {cmd!r} in container {self.name}: {self._refusal(error)}") from None
        streams: dict[str, list[bytes]] = {"output": [], "stdout": [], "stderr": []}

        def drain(frames: Iterator[tuple[bytes | None, bytes | None]]) -> None:
            for out, err in frames:
                for name, data in (("stdout", out), ("stderr", err)):
                    if data:
                        streams[name].append(data)
                        streams["output"].append(data)

        reader = threading.Thread(target=drain, args=(frames,), daemon=True, name="dockerimg-exec")
        reader.start()
        reader.join(limit)
        if reader.is_alive():
            raise DockerImgError(
                f"exec {cmd!r} in container {self.name} still ran after {limit:g} s (timeout=); "
                "it goes on in the container until it ends or the container is removed"
            )
        exit_code = self.engine.api.exec_inspect(exec_id).get("ExitCode")
        text = {name: b"".join(chunks).decode("utf-8", "replace") for name, chunks in streams.items()}
        return ExecResult(
            int(exit_code if exit_code is not None else -1), text["output"], text["stdout"], text["stderr"]
        )

    def _refusal(self, error: APIError) -> str:
        """Why the engine refused an action, in the same words on every engine: a container that
        is not running says so (Docker: "Container ID is not running"; podman: "... container
        state improper")."""
        try:
            status = self.status
        except APIError:
            status = "unknown"
        if status not in ("running", "unknown"):
            return f"container {self.name} is not running (status {status})"
        return str(error.explanation or error)

    def copy_to(self, container_path: str, host_path: str | Path) -> None:
        """Copy the file or folder `host_path` to `container_path` in the container (`docker cp
        HOST CONTAINER:PATH`, through the API, so a remote engine works too). Missing parent
        folders are created; files belong to root, as with `docker cp`. The container may be
        stopped."""
        source = Path(host_path)
        if not source.exists():
            raise InvalidSpec(f"copy_to: {source} does not exist on this machine")
        target = PurePosixPath(container_path)
        if not target.is_absolute() or target == PurePosixPath("/"):
            raise InvalidSpec(f"copy_to: give an absolute path in the container, got {container_path!r}")

        def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            return info

        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            tar.add(str(source), arcname=str(target.relative_to("/")), filter=as_root)
        try:
            self.engine.api.put_archive(self.id, "/", archive.getvalue())
        except APIError as error:
            raise DockerImgError(
                f"copy_to {self.name}:{container_path}: {error.explanation or error}"
            ) from None

    def copy_from(self, container_path: str, host_path: str | Path) -> Path:
        """Copy the file or folder `container_path` out of the container to `host_path` (`docker
        cp CONTAINER:PATH HOST`, through the API); returns `host_path`, which becomes that file or
        folder (an existing one is replaced)."""
        target = Path(host_path)
        try:
            stream, _ = self.engine.api.get_archive(self.id, container_path)
        except NotFound:
            raise DockerImgError(f"copy_from: {self.name} has no {container_path}") from None
        except APIError as error:
            raise DockerImgError(
                f"copy_from {self.name}:{container_path}: {error.explanation or error}"
            ) from None
        archive = io.BytesIO(b"".join(stream))
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch, tarfile.open(fileobj=archive) as tar:
            top = tar.getmembers()[0].name.split("/")[0]
            if hasattr(tarfile, "data_filter"):
                tar.extractall(scratch, filter="data")
            else:  # Python < 3.11.4: the archive comes from the engine, named by its top folder
                tar.extractall(scratch)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            Path(scratch, top).rename(target)
        return target

    def commit(
        self,
        repository: str,
        tag: str = "latest",
        *,
        message: str | None = None,
        author: str | None = None,
        changes: str | Sequence[str] | None = None,
    ) -> Image:
        """`docker commit -m MESSAGE --author AUTHOR`: an image of the container's current state,
        removed at the end of the session like built images (and its tag given back)."""
        ref = f"{repository}:{tag}"
        previous = image_of(self.engine.api, ref)
        response = self.engine.api.commit(
            self.id,
            repository=repository,
            tag=tag,
            message=message,
            author=author,
            changes=changes if changes is None or isinstance(changes, str) else list(changes),
        )
        image_id = str(response["Id"])
        if self._ledger is not None:
            self._ledger.record("image", image_id)
            record_tag(self._ledger, self.engine.api, ref, image_id, previous=previous or "")
        return Image(self.engine.client.images.get(image_id), ref=ref)

    def wait_for(self, *checks: Check, timeout: float | None = None) -> Container:
        """Wait until every check passes (see `pytest_dockerimg.wait`)."""
        wait_until_ready(self, as_checks(checks), self.default_timeout if timeout is None else timeout)
        return self

    def wait_exit(self, timeout: float | None = None) -> int:
        """Wait until the container's command ends (`docker wait`); its exit code. For one-shot
        containers: `docker_run(image, command=[...]).wait_exit()`, then `.logs()`. Waits at most
        `timeout` seconds (default: the readiness timeout, --docker-timeout), then raises."""
        limit = self.default_timeout if timeout is None else timeout
        try:
            result = self.raw.wait(timeout=limit)
        except requests.RequestException:
            raise DockerImgError(
                f"container {self.name} still runs after {limit:g} s (wait_exit(timeout=...) waits longer)"
            ) from None
        return int(result.get("StatusCode", -1))

    def stop(self, timeout: float | None = None) -> None:
        """`docker stop`: SIGTERM, then SIGKILL after `timeout` seconds (default:
        --docker-stop-timeout, 0 unless set: killed at once)."""
        self.raw.stop(timeout=math.ceil(self.stop_timeout if timeout is None else timeout))
        self.raw.reload()

    def start(
        self, wait: Check | Iterable[Check] | None = None, *, timeout: float | None = None
    ) -> Container:
        """`docker start` a stopped container, then wait until the `wait` checks pass (a
        `wait.log` check reads only the output of this new run)."""
        try:
            self.raw.start()
        except APIError as error:
            raise DockerImgError(
                f"container {self.name} did not start: {error.explanation or error}"
            ) from None
        return self._after_start(wait, timeout)

    def restart(
        self, wait: Check | Iterable[Check] | None = None, *, timeout: float | None = None
    ) -> Container:
        """`docker restart` (stopped as `stop()` does), then wait until the `wait` checks pass.
        Published ports are read again: a random host port may change."""
        try:
            self.raw.restart(timeout=math.ceil(self.stop_timeout))
        except APIError as error:
            raise DockerImgError(
                f"container {self.name} did not restart: {error.explanation or error}"
            ) from None
        return self._after_start(wait, timeout)

    def _after_start(self, wait: Check | Iterable[Check] | None, timeout: float | None) -> Container:
        self.raw.reload()
        checks = as_checks(wait)
        if checks:
            wait_until_ready(self, checks, self.default_timeout if timeout is None else timeout)
        return self


def _command(command: str | Sequence[str] | None) -> str | list[str] | None:
    if command is None or isinstance(command, str):
        return command
    return [str(part) for part in command]


class Runner:
    """Starts containers for one scope; everything it creates is recorded in the ledger under
    that scope the moment it exists."""

    def __init__(
        self,
        engine: Engine,
        identity: Identity,
        ledger: Ledger,
        *,
        scope: str,
        bind_host: str,
        timeout: float,
        reaper: Reaper | None = None,
        stop_timeout: float = 0.0,
        stats: Stats | None = None,
        own_tags: Mapping[str, str] | None = None,
    ) -> None:
        self.engine = engine
        self.identity = identity
        self.ledger = ledger
        self.scope = scope
        self.reaper = reaper
        self.bind_host = bind_host
        self.timeout = timeout
        self.stop_timeout = stop_timeout
        self.stats = stats if stats is not None else Stats()
        self.own_tags = own_tags if own_tags is not None else {}
        self.started: list[Container] = []

    def _image(self, image: Image | str) -> Image:
        if isinstance(image, Image):
            return image
        if not isinstance(image, str) or not image:
            raise InvalidSpec(f"docker_run takes an Image, an image id or a ref, got {image!r}")
        own = self.own_tags.get(full_tag(image))  # what this session built under that tag
        try:
            return Image(self.engine.client.images.get(own or image), ref=image)
        except ImageNotFound:
            pass
        try:
            # Pulled for the session: removed at its end, not after this test (and pulled again).
            pull_recorded(self.ledger, self.engine.api, image, lambda: self.engine.api.pull(image))
            return Image(self.engine.client.images.get(image), ref=image)
        except (APIError, ImageNotFound) as error:
            raise DockerImgError(
                f"image {image} is not present and could not be pulled: "
                f"{getattr(error, 'explanation', None) or error}"
            ) from None

    def _container_name(self, name: str | None) -> str:
        if name is not None:
            return name
        return f"{scope_prefix(self.scope)}-{uuid.uuid4().hex[:6]}"

    def run(
        self,
        image: Image | str,
        *,
        ports: str | Iterable[str] | Mapping[Any, Any] | None = None,
        publish_all: bool = False,
        command: str | Sequence[str] | None = None,
        environment: Mapping[str, str] | Sequence[str] | None = None,
        volumes: Mapping[str, Any] | Sequence[str] | None = None,
        wait: Check | Iterable[Check] | None = None,
        name: str | None = None,
        timeout: float | None = None,
        network: Network | str | None = None,
        aliases: Sequence[str] | None = None,
        **run_kwargs: Any,
    ) -> Container:
        """`docker run -d`: create, start and (with `wait=`) wait until ready. `ports` takes the
        `-p` string forms or a docker-py dict; `publish_all=True` is `-P`; `network=` (a
        `Network` or a name) with `aliases=["db"]` is `--network NET --network-alias db`; other
        keyword arguments go to docker-py's `containers.run`."""
        check_run_kwargs(run_kwargs)
        checks = as_checks(wait)
        attach = endpoint_options(self.engine, network, aliases)
        if attach and "networking_config" in run_kwargs:
            raise InvalidSpec("pass network= and aliases=, or networking_config=, not both")
        resolved = self._image(image)
        bindings: list[PortBinding] = parse_ports(ports, self.bind_host)
        if publish_all:
            bindings += exposed_bindings(resolved.exposed_ports, self.bind_host)
        self._check_reachable(bindings)
        labels = {
            **_user_labels(run_kwargs.pop("labels", None)),
            **self.identity.labels("container", keep=self.ledger.policy.label_value),
        }
        volumes = normalize_volumes(volumes)
        self._create_missing_volumes(volumes)
        if self.reaper is not None and (name is not None or any(b.host_port for b in bindings)):
            self.reaper.wait()  # an earlier test's container may still hold that port or name

        shared = self.engine.reach.network
        if shared and not attach and not run_kwargs.get("network_mode"):
            attach = {"network": shared}  # the tests' own network: where they reach containers
        started = time.monotonic()
        container_name = self._container_name(name)
        try:
            # What docker-py's containers.create does, without the inspect that follows it: the
            # one inspect after the start gives the ports and the state (one round trip, not two).
            created = self.engine.api.create_container(
                **_create_container_args(
                    {
                        "image": resolved.id,
                        "command": _command(command),
                        "environment": environment,
                        "volumes": volumes,
                        "name": container_name,
                        "ports": to_docker_py(bindings),
                        "labels": labels,
                        "detach": True,
                        "version": self.engine.api.api_version,
                        **attach,
                        **run_kwargs,
                    }
                )
            )
            raw = self.engine.client.containers.prepare_model({"Id": created["Id"], "Name": container_name})
        except TypeError as error:
            raise InvalidSpec(f"docker_run: {error}") from None
        except APIError as error:
            raise DockerImgError(
                f"could not create a container from {resolved.ref}: {error.explanation or error}"
            ) from None
        self.ledger.record("container", str(raw.id), scope=self.scope)
        if shared and attach.get("network", shared) != shared:
            self._join_shared_network(raw)
        container = Container(
            raw,
            self.engine,
            resolved,
            default_timeout=self.timeout,
            stop_timeout=self.stop_timeout,
            ledger=self.ledger,
        )
        self.started.append(container)
        self.stats.containers += 1
        try:
            raw.start()
        except APIError as error:
            self._discard(container)
            raise self._start_error(container, bindings, error) from None
        raw.reload()
        self.stats.start_seconds += time.monotonic() - started
        if checks:
            ready_started = time.monotonic()
            try:
                wait_until_ready(
                    container,
                    checks,
                    self.timeout if timeout is None else timeout,
                    state={
                        "RestartCount": raw.attrs.get("RestartCount") or 0,
                        **(raw.attrs.get("State") or {}),
                    },
                )
            except DockerImgError:
                self._discard(container)
                raise
            finally:
                self.stats.ready_seconds += time.monotonic() - ready_started
        return container

    def _check_reachable(self, bindings: list[PortBinding]) -> None:
        """A remote engine publishes a port bound to loopback on its own loopback: say so now,
        rather than after a readiness timeout."""
        if not self.engine.reach.remote:
            return
        for binding in bindings:
            if is_loopback(binding.host_ip):
                raise InvalidSpec(
                    f"port {binding.key} is bound to {binding.host_ip}, which lands on the remote "
                    f"host's loopback (engine at {self.engine.address}) and cannot be reached from "
                    f'here; use "{binding.port}" or {{{binding.port}: None}} (bound on '
                    f"{self.bind_host}, reached at {self.engine.host}) or an interface of that host"
                )

    def _join_shared_network(self, raw: RawContainer) -> None:
        """When the tests run in a container of this engine, a container put on a network of its
        own (network=) joins the tests' network too, where they reach it."""
        network = str(self.engine.reach.network)
        try:
            self.engine.api.connect_container_to_network(str(raw.id), network)
        except APIError as error:
            raise DockerImgError(
                f"cannot attach container {raw.name} to network {network}, which the tests' own "
                f"container is on: {error.explanation or error}; pass --docker-reach-host"
            ) from None

    def _discard(self, container: Container) -> None:
        """Remove a container that failed to start or to become ready, now rather than at teardown
        (unless failing tests keep their containers)."""
        entry = self.ledger.find("container", container.id)
        if entry is None or entry.keep != "never":
            return
        if not remove_container(self.engine.api, container.id):
            self.ledger.mark_gone(entry)
        self.started.remove(container)

    def _create_missing_volumes(self, volumes: Mapping[str, Any] | Sequence[str] | None) -> None:
        """Named volumes that do not exist yet: create them (marked, and removed with the
        scope) rather than let the engine create unmarked ones that nothing would remove."""
        sources = (
            list(volumes) if isinstance(volumes, Mapping) else [v.split(":", 1)[0] for v in volumes or []]
        )
        for name in sources:
            if not isinstance(name, str) or name.startswith(("/", ".", "~")) or "/" in name:
                continue  # a host path, not a volume name
            try:
                self.engine.api.inspect_volume(name)
            except NotFound:
                labels = self.identity.labels("volume", keep=self.ledger.policy.label_value)
                self.engine.api.create_volume(name, labels=labels)
                self.ledger.record("volume", name, scope=self.scope)

    def _start_error(
        self, container: Container, bindings: list[PortBinding], error: APIError
    ) -> DockerImgError:
        text = str(error.explanation or error)
        match = _PORT_IN_USE.search(text)
        if match or "port is already allocated" in text or "address already in use" in text:
            fixed = ", ".join(f"{b.host_ip}:{b.host_port}" for b in bindings if b.host_port is not None)
            return PortConflict(match["address"] if match else fixed, text)
        return DockerImgError(f"container {container.name} from {container.image.ref} did not start: {text}")
