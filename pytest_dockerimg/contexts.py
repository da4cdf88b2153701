"""Which engine to talk to, chosen as the docker CLI chooses it: `DOCKER_HOST`, else the context
named by `DOCKER_CONTEXT`, else the CLI config's `currentContext`, else the default socket.

A context is `<config dir>/contexts/meta/<sha256 of its name>/meta.json` (its endpoint's `Host`
and `SkipTLSVerify`), with TLS material under `contexts/tls/<same hash>/docker/`; the config dir
is `DOCKER_CONFIG`, else `~/.docker` (Docker Desktop, Colima and rootless Docker set one up).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from docker.tls import TLSConfig

DEFAULT_ADDRESS = "unix:///var/run/docker.sock"


class ContextError(Exception):
    """The selected Docker context cannot be read; the message says which and why."""


@dataclass(frozen=True)
class Endpoint:
    """An engine address and where it came from (`why` is shown in the report header)."""

    address: str
    why: str
    context: str | None = None
    tls: TLSConfig | None = None


def config_dir(environ: Mapping[str, str]) -> Path:
    """The docker CLI's config folder: `DOCKER_CONFIG`, else `~/.docker`."""
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"])
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".docker"


def current_context(environ: Mapping[str, str]) -> tuple[str | None, str]:
    """The context name the CLI would use (None: the default one) and where that came from."""
    name = environ.get("DOCKER_CONTEXT", "").strip()
    if name:
        return (None if name == "default" else name), "DOCKER_CONTEXT"
    config = config_dir(environ) / "config.json"
    try:
        data = json.loads(config.read_text())
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError) as error:
        raise ContextError(f"cannot read {config}: {error}") from None
    name = str(data.get("currentContext") or "").strip() if isinstance(data, dict) else ""
    return (name if name and name != "default" else None), str(config)


def _context_endpoint(name: str, source: str, environ: Mapping[str, str]) -> Endpoint:
    digest = hashlib.sha256(name.encode()).hexdigest()
    folder = config_dir(environ) / "contexts"
    meta_path = folder / "meta" / digest / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise ContextError(
            f"Docker context {name!r} (from {source}) does not exist: no {meta_path} "
            "(see `docker context ls`)"
        ) from None
    except (OSError, ValueError) as error:
        raise ContextError(f"cannot read Docker context {name!r} ({meta_path}): {error}") from None
    docker_endpoint = (meta.get("Endpoints") or {}).get("docker") or {}
    address = str(docker_endpoint.get("Host") or "").strip()
    if not address:
        raise ContextError(f"Docker context {name!r} ({meta_path}) names no docker endpoint Host")
    tls_dir = folder / "tls" / digest / "docker"
    tls = None
    if tls_dir.is_dir() or docker_endpoint.get("SkipTLSVerify"):
        files = {part: tls_dir / f"{part}.pem" for part in ("ca", "cert", "key")}
        has_cert = files["cert"].is_file() and files["key"].is_file()
        tls = TLSConfig(
            client_cert=(str(files["cert"]), str(files["key"])) if has_cert else None,
            ca_cert=str(files["ca"]) if files["ca"].is_file() else None,
            verify=not docker_endpoint.get("SkipTLSVerify"),
        )
    return Endpoint(address, f"Docker context {name!r} (from {source})", context=name, tls=tls)


def resolve_endpoint(environ: Mapping[str, str] | None = None) -> Endpoint:
    """The engine the docker CLI would talk to in this environment."""
    env = os.environ if environ is None else environ
    host = env.get("DOCKER_HOST", "").strip()
    if host:
        return Endpoint(host, "DOCKER_HOST")
    name, source = current_context(env)
    if name is None:
        return Endpoint(DEFAULT_ADDRESS, "the default socket")
    return _context_endpoint(name, source, env)
