"""The build context as the engine will see it: `.dockerignore`, the Dockerfile, the base images
named by `FROM`, and a digest of all the inputs, so that unchanged inputs can skip the build."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from docker.utils.build import exclude_paths

_FROM = re.compile(
    r"^\s*FROM\s+(?:--platform=\S+\s+)?(?P<image>\S+)(?:\s+AS\s+(?P<stage>\S+))?\s*$", re.IGNORECASE
)
_CHUNK = 1 << 20


def dockerignore_patterns(context: Path) -> list[str]:
    """The `.dockerignore` patterns, read the way docker-py reads them when it tars the context."""
    ignore = context / ".dockerignore"
    if not ignore.is_file():
        return []
    lines = (line.strip() for line in ignore.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_files(context: Path, dockerfile: str) -> list[str]:
    """The paths (relative to `context`, sorted) that the build context will contain."""
    return sorted(exclude_paths(str(context), dockerignore_patterns(context), dockerfile=dockerfile))


def base_images(dockerfile: str) -> list[str] | None:
    """The images named by `FROM` (stage references and `scratch` left out), or None when a
    `FROM` uses a build argument and the base cannot be known before the build."""
    stages: set[str] = set()
    bases: list[str] = []
    for line in dockerfile.splitlines():
        match = _FROM.match(line)
        if not match:
            continue
        image = match["image"]
        if "$" in image:
            return None
        if image.lower() != "scratch" and image.lower() not in stages:
            bases.append(image)
        if match["stage"]:
            stages.add(match["stage"].lower())
    return bases


def inputs_digest(
    context: Path,
    files: Iterable[str],
    *,
    dockerfile: str,
    dockerfile_text: str,
    buildargs: Mapping[str, str],
    target: str | None,
    labels: Mapping[str, str],
    base_ids: Iterable[str],
) -> str:
    """A digest of everything that decides what `docker build` produces: file contents and
    modes (not mtimes: a fresh checkout must hash the same), the Dockerfile, build args, target,
    labels and the ids of the base images."""
    digest = hashlib.sha256()
    header = {
        "dockerfile": dockerfile,
        "buildargs": sorted(buildargs.items()),
        "target": target,
        "labels": sorted(labels.items()),
        "bases": list(base_ids),
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    digest.update(b"\0dockerfile\0" + dockerfile_text.encode())
    for relative in files:
        path = context / relative
        info = path.lstat()
        digest.update(f"\0{relative}\0{stat.S_IFMT(info.st_mode)}\0{stat.S_IMODE(info.st_mode):o}\0".encode())
        if stat.S_ISLNK(info.st_mode):
            digest.update(os.readlink(path).encode())
        elif stat.S_ISREG(info.st_mode):
            with path.open("rb") as handle:
                while block := handle.read(_CHUNK):
                    digest.update(block)
    return digest.hexdigest()
