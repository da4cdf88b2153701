"""pytest-dockerimg: build Docker images from their Dockerfiles, run them with real port
mappings, wait until the service answers, push them to a registry, and clean up, from pytest.

The public names are loaded on first access (PEP 562): pytest imports this package for every
run where the plugin is installed, and a suite that uses no Docker must not pay for docker-py,
requests and tenacity."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# public name -> the module that defines it (a module itself when the name is the module's)
_LAZY = {
    "BuildError": "errors",
    "BuildSpec": "build",
    "BuildStep": "buildlog",
    "Container": "containers",
    "ContainerExited": "errors",
    "DockerImgError": "errors",
    "Engine": "engine",
    "EngineUnavailable": "errors",
    "ExecResult": "wait",
    "HistoryRow": "images",
    "Image": "images",
    "InvalidSpec": "errors",
    "Network": "networks",
    "NotReady": "errors",
    "PortConflict": "errors",
    "Registry": "registry",
    "RegistryError": "errors",
    "errors": "errors",
    "wait": "wait",
}

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


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{module_name}", __name__)
    value = module if name == module_name else getattr(module, name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
