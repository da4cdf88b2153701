"""Which builder a session uses (`--docker-builder {auto,buildkit,classic}`), and why.

BuildKit needs a docker CLI that can really build with it (buildx, or a CLI before 23.0 with
`DOCKER_BUILDKIT=1`; a newer CLI without buildx refuses) and that talks to the same daemon as the
plugin's client (same daemon ID in `docker info`). Probing costs a few CLI calls, so the result
is kept in a small file keyed by everything it depends on, and asked for only by a session that
builds.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

BuilderName = Literal["buildkit", "classic"]
PROBE_TIMEOUT = 15.0
PLUGIN_DIRS = (
    "~/.docker/cli-plugins",
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)
_CACHE_VERSION = 2


@dataclass(frozen=True)
class Cli:
    """A docker CLI that builds with BuildKit: through buildx, or its own built-in BuildKit."""

    path: str
    version: str
    buildx: str | None = None
    rawjson: bool = False

    def build_command(self) -> list[str]:
        return [self.path, "buildx", "build", "--load"] if self.buildx else [self.path, "build"]

    def environment(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if environ is None else environ)
        env.update(DOCKER_CLI_HINTS="false", BUILDX_NO_DEFAULT_ATTESTATIONS="1")
        if not self.buildx:
            env["DOCKER_BUILDKIT"] = "1"
        return env

    def describe(self) -> str:
        if self.buildx:
            return f"docker buildx {self.buildx} ({self.path})"
        return f"the built-in BuildKit of docker {self.version} ({self.path}, DOCKER_BUILDKIT=1)"


@dataclass(frozen=True)
class Choice:
    builder: BuilderName
    reason: str
    cli: Cli | None = None

    def describe(self) -> str:
        if self.cli is not None:
            return f"BuildKit through {self.cli.describe()}: {self.reason}"
        return f"classic (the engine API): {self.reason}"


def _run(command: list[str], env: Mapping[str, str]) -> tuple[int, str]:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PROBE_TIMEOUT, env=dict(env), check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return -1, str(error)
    return done.returncode, (done.stdout + done.stderr).strip()


def candidate_clis(environ: Mapping[str, str]) -> list[str]:
    """Every `docker` on PATH, in order, then Debian's /usr/bin/docker; each real file once."""
    found: list[str] = []
    seen: set[str] = set()
    folders = [*environ.get("PATH", "").split(os.pathsep), "/usr/bin"]
    for folder in folders:
        path = Path(folder or ".") / "docker"
        if path.is_file() and os.access(path, os.X_OK):
            real = str(path.resolve())
            if real not in seen:
                seen.add(real)
                found.append(str(path))
    return found


def probe_cli(path: str, engine_id: str, environ: Mapping[str, str]) -> Cli | str:
    """The CLI at `path`, when it can build with BuildKit on the engine `engine_id`; else why not."""
    env = dict(environ)
    format_ = "{{.Client.Version}} {{range .Server.Components}}{{.Name}};{{end}}"
    code, output = _run([path, "version", "--format", format_], env)
    version, _, server = (output.splitlines()[0] if output else "").partition(" ")
    if not version or not version[0].isdigit():
        return f"{path} does not run ({output.splitlines()[-1] if output else code})"
    if "podman" in server.lower():
        return f"docker {version} at {path} talks to podman, whose API builds with buildah, not BuildKit"
    code, output = _run([path, "buildx", "version"], env)
    buildx = output.split()[1] if code == 0 and len(output.split()) > 1 else None
    rawjson = False
    if buildx:
        _, help_text = _run([path, "buildx", "build", "--help"], env)
        rawjson = "rawjson" in help_text
    elif int(version.split(".")[0]) >= 23:
        return f"docker {version} at {path} has no buildx, and without it refuses to build with BuildKit"
    cli = Cli(path, version, buildx, rawjson)
    code, daemon = _run([path, "info", "--format", "{{.ID}}"], cli.environment(env))
    daemon = daemon.strip()
    if code != 0 or not daemon:
        why = daemon.splitlines()[-1] if daemon else code
        return f"docker {version} at {path} cannot reach an engine ({why})"
    if daemon != engine_id:
        return (
            f"docker {version} at {path} talks to another engine (ID {daemon}, the plugin's is {engine_id})"
        )
    return cli


def _cache_key(setting: str, engine_id: str, environ: Mapping[str, str], clis: list[str]) -> str:
    """Everything the choice depends on: the engine, the environment that picks the CLI and its
    engine, and each CLI and plugin folder with its modification time."""

    def mtime(path: str) -> float:
        try:
            return os.stat(os.path.expanduser(path)).st_mtime
        except OSError:
            return 0.0

    parts = {
        "version": _CACHE_VERSION,
        "setting": setting,
        "engine": engine_id,
        "env": [
            environ.get(name, "")
            for name in ("PATH", "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "HOME")
        ],
        "clis": [(path, mtime(path)) for path in clis],
        "plugins": [(folder, mtime(folder)) for folder in PLUGIN_DIRS],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _load(cache: Path, key: str) -> Choice | None:
    try:
        found = json.loads(cache.read_text())[key]
        cli = Cli(**found["cli"]) if found.get("cli") else None
        return Choice(found["builder"], found["reason"], cli)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save(cache: Path, key: str, choice: Choice) -> None:
    """Add the choice under its key: sessions on other engines or environments keep theirs."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        try:
            records = json.loads(cache.read_text())
        except (OSError, ValueError):
            records = {}
        if not isinstance(records, dict) or len(records) > 50:
            records = {}
        records[key] = asdict(choice)
        temporary = cache.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(records))
        temporary.replace(cache)
    except OSError:
        pass  # a cache only


def cached_choice(
    setting: str, engine_id: str, cache: Path, environ: Mapping[str, str] | None = None
) -> Choice | None:
    """The choice, without running any CLI: decided by the setting, or found in the cache."""
    if setting == "classic":
        return Choice("classic", "--docker-builder classic")
    env = os.environ if environ is None else environ
    return _load(cache, _cache_key(setting, engine_id, env, candidate_clis(env)))


def choose_builder(
    setting: str, engine_id: str, cache: Path, environ: Mapping[str, str] | None = None
) -> Choice:
    """`auto`: BuildKit through the first docker CLI that can build with it on this engine, else
    classic. `buildkit`: the same CLI, or a classic choice whose reason says why none fits (the
    caller refuses to build). `classic`: classic."""
    env = dict(os.environ if environ is None else environ)
    found = cached_choice(setting, engine_id, cache, env)
    if found is not None:
        return found
    clis = candidate_clis(env)
    reasons = []
    choice = None
    for path in clis:
        cli = probe_cli(path, engine_id, env)
        if isinstance(cli, Cli):
            why = "--docker-builder buildkit" if setting == "buildkit" else "auto: it builds on this engine"
            choice = Choice("buildkit", why, cli)
            break
        reasons.append(cli)
    if choice is None:
        why = "; ".join(reasons) if reasons else "no docker CLI on PATH"
        choice = Choice("classic", f"{setting}: no docker CLI can build with BuildKit on this engine ({why})")
    _save(cache, _cache_key(setting, engine_id, env, clis), choice)
    return choice
