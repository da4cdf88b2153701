"""`DockerSession`: everything Docker that one test session (or one xdist worker) owns, wired
together: the engine connection, the watcher and stale sweep, the builder, the runners of each
test and of the session, the registry, and the final removal of what the session created."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .build import Builder, BuildSpec
from .cleanup import Reaper, Removed, Tracker, remove_session
from .containers import Container, Runner
from .engine import Engine, connect
from .errors import EngineUnavailable
from .images import Image
from .labels import Identity
from .registry import Registry, existing_registry, start_registry
from .settings import Settings
from .state import forget_session, record_kept
from .stats import Stats
from .watcher import start_watcher, sweep_stale


@dataclass
class Scope:
    """The containers of one test (or of the session) and what removes them."""

    runner: Runner
    tracker: Tracker
    stats: Stats

    @property
    def containers(self) -> list[Container]:
        return self.runner.started

    def close(self, *, keep: bool) -> list[str]:
        started = time.monotonic()
        if keep:
            record_kept(list(self.tracker.containers))
        try:
            return self.tracker.close(keep_containers=keep)
        finally:
            self.stats.teardown_seconds += time.monotonic() - started


@dataclass
class DockerSession:
    """The Docker side of one pytest session. `owner` is True in the process that outlives the
    others (the only process, or the xdist controller): it removes the session's images."""

    settings: Settings
    identity: Identity
    owner: bool = True
    progress: Callable[[str], None] | None = None
    stats: Stats = field(default_factory=Stats)
    problems: list[str] = field(default_factory=list)
    swept: Removed | None = None
    used: bool = False
    _engine: Engine | EngineUnavailable | None = None
    _builder: Builder | None = None
    _session_scope: Scope | None = None
    _registry_scope: Scope | None = None
    _registry: Registry | None = None
    _reaper: Reaper | None = None

    def probe(self) -> Engine | EngineUnavailable:
        """The engine, or why there is none; asked once per session (the report header asks)."""
        if self._engine is None:
            try:
                self._engine = connect(reach_host=self.settings.reach_host, bind_host=self.settings.bind_host)
            except EngineUnavailable as error:
                self._engine = error
        return self._engine

    def engine(self) -> Engine:
        """The engine, for a test that uses Docker: the first call starts the watcher and sweeps
        what dead sessions left behind."""
        engine = self.probe()
        if isinstance(engine, EngineUnavailable):
            raise engine
        if not self.used:
            self.used = True
            start_watcher(self.identity)
            self.swept = sweep_stale(engine.api, self.identity)
            self.problems += self.swept.problems
        return engine

    @property
    def builder(self) -> Builder:
        if self._builder is None:
            self._builder = Builder(
                self.engine(),
                self.identity,
                no_cache=self.settings.no_build_cache,
                pull=self.settings.pull,
                keep=self.settings.keep_images,
                progress=self.progress,
                stats=self.stats,
            )
        return self._builder

    def build(self, spec: BuildSpec) -> Image:
        return self.builder.build(spec)

    def scope(self, name: str, *, background_teardown: bool = True) -> Scope:
        """A new set of containers, for one test (or, via `session_scope`, for the session)."""
        engine = self.engine()
        if self._reaper is None:
            self._reaper = Reaper(engine.api)
        reaper = self._reaper if background_teardown else None
        tracker = Tracker(engine.api, stop_timeout=self.settings.stop_timeout, reaper=reaper)
        runner = Runner(
            engine,
            self.identity,
            tracker,
            bind_host=self.bind_host,
            timeout=self.settings.timeout,
            keep_containers=self.settings.keep_containers,
            keep_images=self.settings.keep_images,
            stats=self.stats,
            name_prefix=name,
        )
        return Scope(runner, tracker, self.stats)

    @property
    def bind_host(self) -> str:
        """Where ports that name no interface are published (see `pytest_dockerimg.reach`)."""
        engine = self.probe()
        return (
            engine.reach.bind_host if isinstance(engine, Engine) else self.settings.bind_host or "127.0.0.1"
        )

    @property
    def session_scope(self) -> Scope:
        if self._session_scope is None:
            self._session_scope = self.scope("pytest-session", background_teardown=False)
        return self._session_scope

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            scope = self._registry_scope = self._registry_scope or self.scope(
                "pytest-registry", background_teardown=False
            )
            if self.settings.registry_url:
                self._registry = existing_registry(self.engine(), self.settings.registry_url, scope.tracker)
            else:
                self._registry = start_registry(
                    scope.runner, self.settings.registry_image, self.identity, timeout=self.settings.timeout
                )
        return self._registry

    def finish(self, *, keep_session_containers: bool = False, workers_used_docker: bool = False) -> None:
        """Remove the session's containers, then (in the owner) everything else it created."""
        started = time.monotonic()
        if self._reaper is not None:
            self.problems += self._reaper.close()
        for scope in (self._session_scope, self._registry_scope):
            if scope is not None:
                self.problems += scope.close(keep=keep_session_containers)
        engine = self._engine
        if self.owner and (self.used or workers_used_docker):
            engine = self.probe()
            if isinstance(engine, Engine):
                self.problems += remove_session(engine.api, self.identity).problems
            forget_session(self.identity.session)
        if self._builder is not None:
            self.problems += self._builder.clean_up()
        self.stats.teardown_seconds += time.monotonic() - started
        if isinstance(engine, Engine):
            engine.close()
