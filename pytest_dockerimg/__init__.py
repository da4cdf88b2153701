"""pytest-dockerimg: build Docker images from their Dockerfiles, run them with real port
mappings, wait until the service answers, push them to a registry, and clean up, from pytest."""

from __future__ import annotations

from . import errors, wait
from .build import BuildSpec
from .buildlog import BuildStep
from .containers import Container
from .engine import Engine
from .errors import (
    BuildError,
    ContainerExited,
    DockerImgError,
    EngineUnavailable,
    InvalidSpec,
    NotReady,
    PortConflict,
    RegistryError,
)
from .images import HistoryRow, Image
from .networks import Network
from .registry import Registry
from .wait import ExecResult

__version__ = "0.1.0"

__all__ = [
    "BuildError",
    "BuildSpec",
    "BuildStep",
    "Container",
    "ContainerExited",
    "DockerImgError",
    "Engine",
    "EngineUnavailable",
    "ExecResult",
    "HistoryRow",
    "Image",
    "InvalidSpec",
    "Network",
    "NotReady",
    "PortConflict",
    "Registry",
    "RegistryError",
    "__version__",
    "errors",
    "wait",
]
