"""Settings: every option's CLI flag, ini twin, default and validation, resolved once (CLI > ini > default).

This module knows nothing of pytest: `plugin.py` registers `OPTIONS` with pytest's parser and hands
the raw values to `Settings.resolve`, which raises `SettingsError` for a bad value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .errors import DockerImgError

KeepContainers = Literal["never", "failed", "always"]
KEEP_CONTAINERS_CHOICES: tuple[KeepContainers, ...] = ("never", "failed", "always")


class SettingsError(DockerImgError):
    """An option or ini value that cannot be used."""


@dataclass(frozen=True)
class OptionSpec:
    """One plugin option: its CLI flag, the settings field it sets, and how to read it."""

    flag: str
    field: str
    kind: Literal["flag", "choice", "seconds", "text"]
    default: object
    help: str
    choices: tuple[str, ...] = ()

    @property
    def ini(self) -> str:
        """The ini twin: `--docker-pull` -> `docker_pull`, `--keep-images` -> `docker_keep_images`."""
        name = self.flag.removeprefix("--").removeprefix("docker-")
        return "docker_" + name.replace("-", "_")

    @property
    def dest(self) -> str:
        return "dockerimg_" + self.field


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "--no-build-cache",
        "no_build_cache",
        "flag",
        False,
        "rebuild every image without the layer cache (docker build --no-cache)",
    ),
    OptionSpec(
        "--docker-pull", "pull", "flag", False, "pull newer base images before building (docker build --pull)"
    ),
    OptionSpec(
        "--keep-images",
        "keep_images",
        "flag",
        False,
        "keep the images built or committed by this session instead of removing them",
    ),
    OptionSpec(
        "--keep-containers",
        "keep_containers",
        "choice",
        "never",
        "keep containers after their test: never (default), failed (only for failing tests) or always",
        KEEP_CONTAINERS_CHOICES,
    ),
    OptionSpec(
        "--docker-required",
        "required",
        "flag",
        False,
        "fail, instead of skip, the tests that need Docker when no engine answers",
    ),
    OptionSpec(
        "--docker-bind-host",
        "bind_host",
        "text",
        None,
        "host interface for published ports that name none (default: 127.0.0.1 where ports are "
        "reached on loopback, else 0.0.0.0)",
    ),
    OptionSpec(
        "--docker-reach-host",
        "reach_host",
        "text",
        None,
        "host or IP address where published ports are reached from the tests (default: worked "
        "out: a remote engine's host, a shared network inside a container, else 127.0.0.1)",
    ),
    OptionSpec(
        "--docker-timeout",
        "timeout",
        "seconds",
        30.0,
        "seconds to wait for a container to become ready (default 30)",
    ),
    OptionSpec(
        "--docker-api-timeout",
        "api_timeout",
        "seconds",
        60.0,
        "seconds any one call to the engine may take before it counts as failed (default 60): "
        "a frozen engine fails the tests in bounded time",
    ),
    OptionSpec(
        "--docker-stop-timeout",
        "stop_timeout",
        "seconds",
        0.0,
        "seconds of graceful stop (SIGTERM) before a container is killed at teardown; "
        "0 (default) kills at once",
    ),
    OptionSpec(
        "--docker-registry-image",
        "registry_image",
        "text",
        "registry:2",
        "image that the docker_registry fixture runs (default registry:2)",
    ),
    OptionSpec(
        "--docker-registry-url",
        "registry_url",
        "text",
        None,
        "HOST:PORT of an existing registry for docker_registry, instead of starting one",
    ),
)

_HOST_PORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})$")


def _truthy(option: OptionSpec, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{option.ini}: expected true or false, got {value!r}")


def _seconds(option: OptionSpec, value: object, *, positive: bool) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        raise SettingsError(f"{option.flag}: expected a number of seconds, got {value!r}") from None
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise SettingsError(f"{option.flag}: expected a finite number of seconds, got {value!r}")
    if positive and seconds <= 0:
        raise SettingsError(f"{option.flag}: must be more than 0 seconds, got {value!r}")
    if seconds < 0:
        raise SettingsError(f"{option.flag}: must not be negative, got {value!r}")
    return seconds


def _bind_host(option: OptionSpec, value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        raise SettingsError(
            f"{option.flag}: expected an IP address such as 127.0.0.1 or 0.0.0.0, got {value!r}"
        ) from None


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _reach_host(option: OptionSpec, value: str) -> str:
    """An IP address (IPv6 with or without brackets) or a host name; no scheme, no port."""
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        pass
    if not _HOSTNAME.match(value):
        raise SettingsError(
            f"{option.flag}: expected a host name or an IP address such as 192.168.1.20 or "
            f"docker.example.com (no scheme, no port), got {value!r}"
        )
    return value


def _registry_url(option: OptionSpec, value: str) -> str:
    """`HOST:PORT`, `http://HOST:PORT` or `https://HOST:PORT`, as a URL (http by default)."""
    scheme, separator, address = value.strip().rstrip("/").rpartition("://")
    scheme = scheme if separator else "http"
    match = _HOST_PORT.match(address)
    if scheme not in ("http", "https") or not match or not 0 < int(match["port"]) < 65536:
        raise SettingsError(f"{option.flag}: expected HOST:PORT such as 127.0.0.1:5000, got {value!r}")
    return f"{scheme}://{address}"


@dataclass(frozen=True)
class Settings:
    """The resolved, validated options of one test session."""

    no_build_cache: bool = False
    pull: bool = False
    keep_images: bool = False
    keep_containers: KeepContainers = "never"
    required: bool = False
    bind_host: str | None = None
    reach_host: str | None = None
    timeout: float = 30.0
    stop_timeout: float = 0.0
    api_timeout: float = 60.0
    registry_image: str = "registry:2"
    registry_url: str | None = None

    @classmethod
    def resolve(cls, cli: Callable[[OptionSpec], object], ini: Callable[[OptionSpec], object]) -> Settings:
        """Read each option from the CLI, else its ini twin, else its default; validate all."""
        values: dict[str, object] = {}
        for option in OPTIONS:
            raw = cli(option)
            if raw is None:
                raw = ini(option)
            if raw is None or raw == "" or raw == []:
                values[option.field] = option.default
                continue
            values[option.field] = _convert(option, raw)
        return cls(**values)  # type: ignore[arg-type]


def _convert(option: OptionSpec, raw: object) -> object:
    if option.kind == "flag":
        return _truthy(option, raw)
    if option.kind == "seconds":
        return _seconds(option, raw, positive=option.field in ("timeout", "api_timeout"))
    text = str(raw).strip()
    if option.kind == "choice":
        if text not in option.choices:
            raise SettingsError(f"{option.flag}: expected one of {', '.join(option.choices)}, got {text!r}")
        return text
    if option.field == "bind_host":
        return _bind_host(option, text)
    if option.field == "reach_host":
        return _reach_host(option, text)
    if option.field == "registry_url":
        return _registry_url(option, text)
    if not text:
        raise SettingsError(f"{option.flag}: must not be empty")
    return text
