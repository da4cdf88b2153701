"""Containers: `Runner.run` does `docker run -d` (create, track, start, wait until ready) and
`Container` is the handle a test uses to reach the service, read logs, exec, commit and stop."""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import requests
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import (  # type: ignore[attr-defined]  # the last one: not in the stubs
    RUN_CREATE_KWARGS,
    RUN_HOST_CONFIG_KWARGS,
    _create_container_args,
)
from docker.models.containers import Container as RawContainer

from .cleanup import Tracker, remove_container
from .engine import Engine
from .errors import DockerImgError, InvalidSpec, PortConflict
from .images import Image
from .labels import LABEL, Identity
from .ports import PortBinding, exposed_bindings, netloc, parse_ports, to_docker_py
from .stats import Stats
from .wait import Check, ExecResult, as_checks, wait_until_ready

_RUN_KWARGS = set(RUN_CREATE_KWARGS) | set(RUN_HOST_CONFIG_KWARGS) | {"network", "networking_config"}
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


def check_run_kwargs(run_kwargs: Mapping[str, Any]) -> None:
    """Reject what `docker_run` cannot pass on to docker-py, naming the argument."""
    unknown = sorted(set(run_kwargs) - _RUN_KWARGS - _HANDLED)
    if unknown:
        raise InvalidSpec(
            f"unknown keyword argument(s) {', '.join(unknown)}; docker_run takes ports, "
            "publish_all, command, environment, volumes, wait, name, timeout and the "
            "keyword arguments of docker-py's containers.run"
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


def check_run_spec(kwargs: Mapping[str, Any], bind_host: str) -> None:
    """Validate `docker_run` / `docker_container` keyword arguments without touching the engine."""
    known = {"ports", "publish_all", "command", "environment", "volumes", "wait", "name", "timeout"}
    check_run_kwargs({key: value for key, value in kwargs.items() if key not in known})
    _user_labels(kwargs.get("labels"))
    parse_ports(kwargs.get("ports"), bind_host)
    as_checks(kwargs.get("wait"))
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
        identity: Identity | None = None,
        keep_images: bool = False,
    ) -> None:
        self.raw = raw
        self.engine = engine
        self.image = image
        self.default_timeout = default_timeout
        self._identity = identity
        self._keep_images = keep_images

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
        """Where this container's published ports are reached (the engine's host)."""
        return self.engine.host

    @property
    def status(self) -> str:
        """The current status (`running`, `exited`, ...), read from the engine."""
        return str(self.state().get("Status", "unknown"))

    def state(self) -> dict[str, Any]:
        self.raw.reload()
        return dict(self.attrs.get("State") or {})

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
        """`(host, port)` to reach container `port` from the test."""
        _, bindings = self._bindings(port)
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

    def logs(self) -> str:
        """Everything the container wrote to stdout and stderr so far."""
        try:
            data = self.engine.api.logs(self.id, stdout=True, stderr=True)
        except NotFound:
            return ""
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)

    def exec(self, cmd: str | Sequence[str]) -> ExecResult:
        """Run `cmd` in the container (`docker exec`); stdout and stderr together."""
        exit_code, output = self.raw.exec_run(cmd if isinstance(cmd, str) else list(cmd))
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output or "")
        return ExecResult(int(exit_code if exit_code is not None else -1), text)

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
        removed at the end of the session like built images."""
        response = self.engine.api.commit(
            self.id,
            repository=repository,
            tag=tag,
            message=message,
            author=author,
            changes=changes if changes is None or isinstance(changes, str) else list(changes),
            # A commit copies the container's labels: give it a mark of its own, kept with the
            # images (not the containers), naming this container as its source.
            conf={"Labels": self._identity.labels("commit", keep=self._keep_images, source=self.id)}
            if self._identity
            else None,
        )
        return Image(self.engine.client.images.get(response["Id"]), ref=f"{repository}:{tag}")

    def wait_for(self, *checks: Check, timeout: float | None = None) -> Container:
        """Wait until every check passes (see `pytest_dockerimg.wait`)."""
        wait_until_ready(self, as_checks(checks), self.default_timeout if timeout is None else timeout)
        return self

    def wait_exit(self, timeout: float | None = None) -> int:
        """Wait until the container's command ends (`docker wait`); its exit code. For one-shot
        containers: `docker_run(image, command=[...]).wait_exit()`, then `.logs()`."""
        try:
            result = self.raw.wait(timeout=timeout)
        except requests.RequestException as error:
            waited = f"after {timeout:g} s" if timeout is not None else f"({error})"
            raise DockerImgError(f"container {self.name} still runs {waited}") from None
        return int(result.get("StatusCode", -1))

    def stop(self, timeout: float = 10) -> None:
        """`docker stop`: SIGTERM, then SIGKILL after `timeout` seconds."""
        self.raw.stop(timeout=math.ceil(timeout))


def _command(command: str | Sequence[str] | None) -> str | list[str] | None:
    if command is None or isinstance(command, str):
        return command
    return [str(part) for part in command]


class Runner:
    """Starts containers for one scope; everything it starts is tracked by `tracker`."""

    def __init__(
        self,
        engine: Engine,
        identity: Identity,
        tracker: Tracker,
        *,
        bind_host: str,
        timeout: float,
        keep_containers: str = "never",
        keep_images: bool = False,
        stats: Stats | None = None,
        name_prefix: str = "pytest",
    ) -> None:
        self.engine = engine
        self.identity = identity
        self.tracker = tracker
        self.bind_host = bind_host
        self.timeout = timeout
        self.keep_containers = keep_containers
        self.keep_images = keep_images
        self.stats = stats if stats is not None else Stats()
        self.name_prefix = name_prefix
        self.started: list[Container] = []

    def _image(self, image: Image | str) -> Image:
        if isinstance(image, Image):
            return image
        if not isinstance(image, str) or not image:
            raise InvalidSpec(f"docker_run takes an Image, an image id or a ref, got {image!r}")
        try:
            return Image(self.engine.client.images.get(image), ref=image)
        except ImageNotFound:
            pass
        try:
            self.engine.client.images.pull(image)
            self.tracker.tags.append(image)
            return Image(self.engine.client.images.get(image), ref=image)
        except (APIError, ImageNotFound) as error:
            raise DockerImgError(
                f"image {image} is not present and could not be pulled: "
                f"{getattr(error, 'explanation', None) or error}"
            ) from None

    def _container_name(self, name: str | None) -> str:
        if name is not None:
            return name
        prefix = re.sub(r"[^a-zA-Z0-9_.-]+", "-", self.name_prefix).strip("-.")[:40] or "pytest"
        return f"{prefix}-{uuid.uuid4().hex[:6]}"

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
        **run_kwargs: Any,
    ) -> Container:
        """`docker run -d`: create, start and (with `wait=`) wait until ready. `ports` takes the
        `-p` string forms or a docker-py dict; `publish_all=True` is `-P`; other keyword arguments
        go to docker-py's `containers.run`."""
        check_run_kwargs(run_kwargs)
        checks = as_checks(wait)
        resolved = self._image(image)
        bindings: list[PortBinding] = parse_ports(ports, self.bind_host)
        if publish_all:
            bindings += exposed_bindings(resolved.exposed_ports, self.bind_host)
        labels = {
            **_user_labels(run_kwargs.pop("labels", None)),
            **self.identity.labels("container", keep=self.keep_containers == "always"),
        }
        self._create_missing_volumes(volumes)
        if self.tracker.reaper is not None and (name is not None or any(b.host_port for b in bindings)):
            self.tracker.reaper.wait()  # an earlier test's container may still hold that port or name

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
        self.tracker.containers.append(str(raw.id))
        container = Container(
            raw,
            self.engine,
            resolved,
            default_timeout=self.timeout,
            identity=self.identity,
            keep_images=self.keep_images,
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
                    state=dict(raw.attrs.get("State") or {}),
                )
            except DockerImgError:
                self._discard(container)
                raise
            finally:
                self.stats.ready_seconds += time.monotonic() - ready_started
        return container

    def _discard(self, container: Container) -> None:
        """Remove a container that failed to start or to become ready, now rather than at teardown
        (unless failing tests keep their containers)."""
        if self.keep_containers != "never":
            return
        remove_container(self.engine.api, container.id)
        if container.id in self.tracker.containers:
            self.tracker.containers.remove(container.id)
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
                keep = self.keep_containers == "always"
                self.engine.api.create_volume(name, labels=self.identity.labels("volume", keep=keep))
                self.tracker.volumes.append(name)

    def _start_error(
        self, container: Container, bindings: list[PortBinding], error: APIError
    ) -> DockerImgError:
        text = str(error.explanation or error)
        match = _PORT_IN_USE.search(text)
        if match or "port is already allocated" in text or "address already in use" in text:
            fixed = ", ".join(f"{b.host_ip}:{b.host_port}" for b in bindings if b.host_port is not None)
            return PortConflict(match["address"] if match else fixed, text)
        return DockerImgError(f"container {container.name} from {container.image.ref} did not start: {text}")
