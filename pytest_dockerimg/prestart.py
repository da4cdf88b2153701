"""Containers started ahead of the test that will use them.

When the next test runs the same image with the same `docker_container` marker arguments, its
container is created, started and waited for in a background thread while the current test
runs: the engine starts one container while it tears another down, and the next test finds its
service ready. The started container belongs to the next test's scope from the start, so it is
removed with that test's containers; one that no test claimed (the run stopped early) is removed
at the end of the session. Only containers that cannot collide with the current test's are
started early: no fixed container name, no fixed host port, no named volumes.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .ports import parse_ports

if TYPE_CHECKING:
    from .containers import Container
    from .images import Image
    from .session import Scope


def can_start_early(run_kwargs: Mapping[str, Any], bind_host: str) -> bool:
    """Whether a container run with `run_kwargs` can run next to another one of the same."""
    if run_kwargs.get("name") is not None or run_kwargs.get("volumes"):
        return False
    return not any(binding.host_port for binding in parse_ports(run_kwargs.get("ports"), bind_host))


@dataclass
class Prestarted:
    """A container being started for a test that has not begun yet."""

    scope: Scope
    container: Future[Container]


class Prestarter:
    """Starts containers in the background for tests to claim by their id (`nodeid`)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[str, Prestarted] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._pending

    def submit(self, key: str, scope: Scope, image: Image, run_kwargs: Mapping[str, Any]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dockerimg-prestart")
        self._pending[key] = Prestarted(scope, self._pool.submit(scope.runner.run, image, **run_kwargs))

    def claim(self, key: str) -> Prestarted | None:
        """The container started for `key`, now the caller's to use and tear down."""
        return self._pending.pop(key, None)

    def close(self) -> list[Scope]:
        """Wait for the runs that no test claimed (the run stopped early); their scopes, for the
        caller to close."""
        unclaimed = [prestarted.scope for prestarted in self._pending.values()]
        for prestarted in self._pending.values():
            prestarted.container.exception()  # waits for the run to end, however it ended
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown()
        return unclaimed
