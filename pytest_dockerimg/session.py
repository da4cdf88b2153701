"""`DockerSession`: everything Docker that one test session (or one xdist worker) owns, wired
together: the engine connection, the ledger, the watcher and stale sweep, the builder, the
container scopes, the registry, and the teardown of what the session created."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .build import Builder, BuildSpec
from .builders import ImageBuilder
from .builders.buildkit import BuildKitBuilder
from .builders.choose import Choice, cached_choice, choose_builder
from .builders.classic import ClassicBuilder
from .cleanup import SCOPE_KINDS, Reaper, Removed, teardown
from .containers import Container, Runner
from .engine import Engine, connect
from .errors import BuildError, EngineUnavailable
from .images import Image
from .labels import Identity
from .ledger import SESSION_SCOPE, TEARDOWN_ORDER, Entry, KeepPolicy, Ledger
from .networks import Networks
from .registry import Registry, existing_registry, start_registry
from .settings import Settings
from .state import Owner, SessionFiles, builder_choice_file
from .stats import Stats
from .watcher import start_reaping_as_init, start_watcher, sweep_stale


@dataclass
class Scope:
    """The containers, networks and volumes of one test, class, module or of the session, and
    what removes them when the scope ends: containers first, then networks and volumes."""

    name: str
    runner: Runner
    networks: Networks
    ledger: Ledger
    stats: Stats
    reaper: Reaper
    background: bool = True
    stop_timeout: float = 0.0

    @property
    def containers(self) -> list[Container]:
        return self.runner.started

    def close(self, *, failed: bool) -> tuple[list[Entry], list[str]]:
        """Settle the keep decisions and remove what is not kept (in the background when the
        scope has a reaper); the entries kept, and the problems met in the foreground."""
        started = time.monotonic()
        try:
            kept = self.ledger.settle(self.name, failed=failed)
            if self.background:
                self.reaper.submit(self.ledger, self.name, self.stop_timeout)
                return kept, []
            self.reaper.wait()  # earlier tests' containers may still be on this scope's networks
            removed = teardown(
                self.runner.engine.api,
                [self.ledger],
                kinds=SCOPE_KINDS,
                scope=self.name,
                stop_timeout=self.stop_timeout,
            )
            return kept, removed.problems
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
    _ledger: Ledger | None = None
    _builder: Builder | None = None
    _choice: Choice | None = None
    _choice_shown: bool = False
    _engine_id: str | None = None
    _scopes: dict[str, Scope] = field(default_factory=dict)
    _registry: Registry | None = None
    _reaper: Reaper | None = None

    @property
    def policy(self) -> KeepPolicy:
        return KeepPolicy(self.settings.keep_containers, self.settings.keep_images)

    @property
    def files(self) -> SessionFiles:
        return SessionFiles(self.identity.session)

    def probe(self) -> Engine | EngineUnavailable:
        """The engine, or why there is none; asked once per session."""
        if self._engine is None:
            try:
                self._engine = connect(
                    api_timeout=self.settings.api_timeout,
                    reach_host=self.settings.reach_host,
                    bind_host=self.settings.bind_host,
                )
            except EngineUnavailable as error:
                self._engine = error
        return self._engine

    def engine(self) -> Engine:
        """The engine, for a test that uses Docker: the first call opens the ledger, starts the
        watcher and sweeps what dead sessions left behind."""
        engine = self.probe()
        if isinstance(engine, EngineUnavailable):
            raise engine
        if not self.used:
            self.used = True
            if engine.reach.container:  # its state tells others whether this session lives
                self.identity = replace(self.identity, container=engine.reach.container)
            identity = self.identity
            # Workers too: their ledgers must be found by whoever sweeps for a killed owner.
            endpoint = engine.endpoint or engine.address
            self.files.write_owner(Owner(identity.owner, identity.started, identity.host, endpoint))
            self._ledger = Ledger(self.files.ledger_path(os.getpid()), self.policy)
            start_watcher(identity, endpoint, engine.context)
            start_reaping_as_init()
            self.swept = sweep_stale(engine.api, identity, endpoint)
            self.problems += self.swept.problems
        return engine

    def _id_of(self, engine: Engine) -> str:
        if self._engine_id is None:
            if engine.podman:  # podman's /info ID is new at every call: its version and address name it
                self._engine_id = f"podman {engine.version} at {engine.endpoint or engine.address}"
            else:
                self._engine_id = str(engine.client.info().get("ID") or engine.address)
        return self._engine_id

    def builder_header(self) -> str:
        """The report header's builder line, from what is known without running a docker CLI."""
        engine = self.probe()
        setting = self.settings.builder
        if isinstance(engine, Engine):
            known = cached_choice(setting, self._id_of(engine), builder_choice_file())
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
            self._choice = choose_builder(self.settings.builder, self._id_of(engine), builder_choice_file())
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
    def ledger(self) -> Ledger:
        self.engine()
        assert self._ledger is not None
        return self._ledger

    @property
    def builder(self) -> Builder:
        if self._builder is None:
            self._builder = Builder(
                self.engine(),
                self.identity,
                self.ledger,
                self._image_builder,
                no_cache=self.settings.no_build_cache,
                pull=self.settings.pull,
                progress=self.progress,
                stats=self.stats,
            )
        return self._builder

    def build(self, spec: BuildSpec) -> Image:
        return self.builder.build(spec)

    @property
    def reaper(self) -> Reaper:
        if self._reaper is None:
            self._reaper = Reaper(self.engine().api)
        return self._reaper

    def scope(self, name: str, *, background_teardown: bool = True) -> Scope:
        """A new set of containers, for one test (or class, module, the session)."""
        engine = self.engine()
        runner = Runner(
            engine,
            self.identity,
            self.ledger,
            scope=name,
            reaper=self.reaper,
            bind_host=self.bind_host,
            timeout=self.settings.timeout,
            stop_timeout=self.settings.stop_timeout,
            stats=self.stats,
            own_tags=self.builder.tags,
        )
        networks = Networks(engine, self.identity, self.ledger, scope=name)
        scope = Scope(
            name,
            runner,
            networks,
            self.ledger,
            self.stats,
            self.reaper,
            background_teardown,
            self.settings.stop_timeout,
        )
        if not background_teardown:
            self._scopes[name] = scope
        return scope

    @property
    def bind_host(self) -> str:
        """Where ports that name no interface are published (see `pytest_dockerimg.reach`)."""
        engine = self.probe()
        return (
            engine.reach.bind_host if isinstance(engine, Engine) else self.settings.bind_host or "127.0.0.1"
        )

    def shared_scope(self, name: str) -> Scope:
        """The scope called `name` that lives until it is closed or the session ends."""
        return self._scopes.get(name) or self.scope(name, background_teardown=False)

    @property
    def session_scope(self) -> Scope:
        return self.shared_scope(SESSION_SCOPE)

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            scope = self.shared_scope("pytest-registry")
            if self.settings.registry_url:
                self._registry = existing_registry(self.engine(), self.settings.registry_url, self.ledger)
            else:
                self._registry = start_registry(
                    scope.runner, self.settings.registry_image, timeout=self.settings.timeout
                )
        return self._registry

    def close_scope(self, scope: Scope, *, failed: bool) -> list[Entry]:
        """End a scope: the entries it keeps (its problems go to the session's)."""
        self._scopes.pop(scope.name, None)
        kept, problems = scope.close(failed=failed)
        self.problems += problems
        return kept

    def finish(self, *, session_failed: bool = False, workers_used_docker: bool = False) -> None:
        """Tear down what the session created: every step runs, whatever failed before it. The
        owner also tears down what the workers' ledgers list (images, tags)."""
        started = time.monotonic()
        try:
            for scope in list(self._scopes.values()):
                self.close_scope(scope, failed=session_failed)
            if self._reaper is not None:
                self.problems += self._reaper.close()
            if not (self.used or (self.owner and workers_used_docker)):
                return
            engine = self.probe()  # the xdist controller may not have used it itself
            if not isinstance(engine, Engine):
                return
            ledgers = [self._ledger] if self._ledger is not None else []
            kinds = SCOPE_KINDS  # a worker leaves images and tags to the owner: others may use them
            if self.owner:
                here = self.files.ledger_path(os.getpid())
                ledgers += [Ledger.load(path) for path in self.files.ledger_paths() if path != here]
                kinds = TEARDOWN_ORDER
            self.problems += teardown(
                engine.api, ledgers, kinds=kinds, stop_timeout=self.settings.stop_timeout
            ).problems
            if self._builder is not None:
                self._builder.release_claims()
            if self.owner and not self.problems:
                self.files.remove()
        finally:
            self.stats.teardown_seconds += time.monotonic() - started
            if isinstance(self._engine, Engine):
                self._engine.close()
