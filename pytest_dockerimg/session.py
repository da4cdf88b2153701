"""`DockerSession`: everything Docker that one test session (or one xdist worker) owns, wired
together: the engine connection, the watcher and stale sweep, the builder, the runners of each
test and of the session, the registry, and the final removal of what the session created."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .build import Builder, BuildSpec
from .builders import ImageBuilder
from .builders.buildkit import BuildKitBuilder
from .builders.choose import Choice, cached_choice, choose_builder
from .builders.classic import ClassicBuilder
from .cleanup import Reaper, Removed, Tracker, remove_built_images, remove_session
from .containers import Container, Runner
from .engine import Engine, connect
from .errors import BuildError, EngineUnavailable
from .images import Image
from .labels import Identity
from .registry import Registry, existing_registry, start_registry
from .settings import Settings
from .state import forget_session, record_kept, state_dir
from .stats import Stats
from .watcher import start_watcher, sweep_stale


def default_bind_host(asked: str | None, remote_engine: bool) -> str:
    """The interface for ports that name none: what --docker-bind-host asked for, else 127.0.0.1
    (a test service must not face the network), or 0.0.0.0 for a remote engine, whose loopback
    this machine cannot reach."""
    return asked or ("0.0.0.0" if remote_engine else "127.0.0.1")


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
    _choice: Choice | None = None
    _choice_shown: bool = False
    _engine_id: str | None = None
    _session_scope: Scope | None = None
    _registry_scope: Scope | None = None
    _registry: Registry | None = None
    _reaper: Reaper | None = None

    def probe(self) -> Engine | EngineUnavailable:
        """The engine, or why there is none; asked once per session (the report header asks)."""
        if self._engine is None:
            try:
                self._engine = connect()
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

    def _id_of(self, engine: Engine) -> str:
        if self._engine_id is None:
            self._engine_id = str(engine.client.info().get("ID") or engine.address)
        return self._engine_id

    def builder_header(self) -> str:
        """The report header's builder line, from what is known without running a docker CLI."""
        engine = self.probe()
        setting = self.settings.builder
        if isinstance(engine, Engine):
            known = cached_choice(setting, self._id_of(engine), state_dir() / "builder-choice.json")
            if known is not None:
                self._choice_shown = True
                return f"docker builder: {known.describe()}"
        return (
            f"docker builder: {setting}, chosen at the first build (BuildKit when a docker CLI that "
            "can build with it talks to this engine, else classic)"
        )

    def builder_choice(self) -> Choice:
        """Which builder builds, and why (runs the docker CLI at most once a session, less when
        an earlier session's answer still holds)."""
        if self._choice is None:
            engine = self.engine()
            cache = state_dir() / "builder-choice.json"
            self._choice = choose_builder(self.settings.builder, self._id_of(engine), cache)
            if not self._choice_shown and self.progress is not None:
                self.progress(f"builder: {self._choice.describe()}")
        return self._choice

    def _image_builder(self, spec: BuildSpec) -> ImageBuilder:
        choice = self.builder_choice()
        if choice.cli is not None:
            return BuildKitBuilder(self.engine(), choice.cli)
        if self.settings.builder == "buildkit":
            raise BuildError(
                spec.describe(),
                f"--docker-builder buildkit, but {choice.reason.removeprefix('buildkit: ')}",
                hint="install buildx for the docker CLI (e.g. Debian's docker-buildx package), or "
                "use --docker-builder auto to fall back to the classic builder",
            )
        if spec.secrets:
            raise BuildError(
                spec.describe(),
                "secrets= needs BuildKit, and this session builds with the classic builder "
                f"({choice.reason})",
                hint="install buildx for the docker CLI (e.g. Debian's docker-buildx package)",
            )
        return ClassicBuilder(self.engine())

    @property
    def builder(self) -> Builder:
        if self._builder is None:
            self._builder = Builder(
                self.engine(),
                self.identity,
                self._image_builder,
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
        """Where ports that name no interface are published (see `default_bind_host`)."""
        engine = self.probe()
        return default_bind_host(self.settings.bind_host, isinstance(engine, Engine) and not engine.local)

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
                self.problems += remove_built_images(engine.api, self.identity.session)
            forget_session(self.identity.session)
        if self._builder is not None:
            self.problems += self._builder.clean_up()
        self.stats.teardown_seconds += time.monotonic() - started
        if isinstance(engine, Engine):
            engine.close()
