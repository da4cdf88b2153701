"""pytest glue: options, markers, fixtures, the report header, report sections and the summary.

No Docker logic lives here: every fixture hands its work to `DockerSession` (session.py).

pytest loads this module for every run where the plugin is installed, so it costs nothing to a
run that uses no Docker: docker-py, requests and tenacity (the modules behind `DockerSession`)
are imported when a test first uses a Docker fixture or marker, the engine is first contacted
then (or after collection, for the header line, when a collected test uses Docker), and the
per-test report hook is registered only then.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
from collections.abc import Callable, Generator, Iterator
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pluggy
import pytest

from .errors import BuildError, ContainerExited, DockerImgError, EngineUnavailable, NotReady
from .settings import OPTIONS, Settings, SettingsError
from .stats import Stats

if TYPE_CHECKING:
    from .containers import Container
    from .engine import Engine
    from .images import Image
    from .labels import Identity
    from .networks import Network
    from .registry import Registry
    from .session import DockerSession, Scope

SESSION_KEY: pytest.StashKey[DockerSession] = pytest.StashKey()  # set when Docker is first used
SETTINGS_KEY = pytest.StashKey[Settings]()
IDENTITY_KEY: pytest.StashKey[Identity] = pytest.StashKey()
SCOPES_KEY: pytest.StashKey[dict[str, Scope]] = pytest.StashKey()  # a node's Docker scopes, by pytest scope
FAILED_KEY = pytest.StashKey[bool]()  # a test in this node failed
KEPT_KEY = pytest.StashKey[list[str]]()
WORKERS_USED_KEY = pytest.StashKey[bool]()
MARKED_KEY = pytest.StashKey[bool]()  # a collected test carries a docker marker
MARKER_ERROR_KEY = pytest.StashKey[str]()

MARKERS = (
    "docker_image(path, *, dockerfile=None, tag=None, buildargs=None, target=None, labels=None, "
    "nocache=False, pull=False): the image that the docker_image and docker_container fixtures "
    "build; path is the build context, relative to the test file's folder",
    "docker_container(*, ports=None, publish_all=False, command=None, environment=None, volumes=None, "
    "wait=None, name=None, **run_kwargs): how the docker_container fixture runs the marked image",
)


@lru_cache(maxsize=1)
def _internal_dirs() -> tuple[str, ...]:
    """Where the plugin's and pytest's own frames live (left out of error tracebacks)."""
    modules = (sys.modules[__name__], pytest, pluggy)
    dirs = tuple(str(Path(module.__file__ or "").resolve().parent) for module in modules)
    return (*dirs, str(Path(pytest.__file__ or "").resolve().parent.parent / "_pytest"))


# ---------------------------------------------------------------------------- options, set-up


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dockerimg", "Docker images and containers (pytest-dockerimg)")
    for option in OPTIONS:
        kwargs: dict[str, Any] = {
            "dest": option.dest,
            "default": None,
            "help": f"{option.help} [ini: {option.ini}]",
        }
        if option.kind == "flag":
            kwargs["action"] = "store_true"
        elif option.kind == "choice":
            kwargs["choices"] = option.choices
        group.addoption(option.flag, **kwargs)
        parser.addini(option.ini, option.help, type="string", default="")


def _emitter(config: pytest.Config) -> Callable[[str], None]:
    """Write a line to the terminal now, even while output is being captured. An xdist worker
    has no terminal of its own: it writes to the stderr it shares with the controller."""
    worker = getattr(config, "workerinput", {}).get("workerid")

    def emit(line: str) -> None:
        # Suspend capturing: in a worker too, where fd 2 is the controller's terminal, but is
        # redirected to a capture file while a test runs.
        capture = config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else nullcontext():
            if worker is not None:
                print(f"[docker] [{worker}] {line}", file=sys.stderr, flush=True)
                return
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"[docker] {line}")

    return emit


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    try:
        settings = Settings.resolve(lambda o: config.getoption(o.dest), lambda o: config.getini(o.ini))
    except SettingsError as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[SETTINGS_KEY] = settings
    config.stash[KEPT_KEY] = []
    config.stash[WORKERS_USED_KEY] = False
    config.stash[MARKED_KEY] = False
    if not hasattr(config, "workerinput") and config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistController(config), "dockerimg-xdist")


def _identity(config: pytest.Config) -> Identity:
    """The session's identity: this process's, or in an xdist worker the controller's."""
    identity = config.stash.get(IDENTITY_KEY, None)
    if identity is None:
        from .labels import Identity

        worker = getattr(config, "workerinput", None)
        if worker is not None and "dockerimg_session" in worker:
            owner, started = (int(value) for value in worker["dockerimg_owner"].split("@"))
            identity = Identity.create(worker["dockerimg_session"], owner, started)
        else:
            identity = Identity.create()
        config.stash[IDENTITY_KEY] = identity
    return identity


def _session(config: pytest.Config) -> DockerSession:
    """The Docker side of this session, made on first use (this imports docker-py)."""
    docker = config.stash.get(SESSION_KEY, None)
    if docker is None:
        from .session import DockerSession

        settings, owner = config.stash[SETTINGS_KEY], not hasattr(config, "workerinput")
        docker = DockerSession(settings, _identity(config), owner=owner, progress=_emitter(config))
        config.stash[SESSION_KEY] = docker
        config.pluginmanager.register(_Reports(), "dockerimg-reports")
    return docker


def _terminate_as_interrupt(config: pytest.Config) -> None:
    """Make SIGTERM run the teardown, as Ctrl-C does, unless someone else handles it already."""
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def interrupt(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, interrupt)
    except (ValueError, AttributeError):  # not the main thread, or no SIGTERM on this platform
        return

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    config.add_cleanup(restore)


class _XdistController:
    """Gives the workers the session's identity; collects what they report at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node: Any) -> None:
        identity = _identity(self.config)
        node.workerinput["dockerimg_session"] = identity.session
        node.workerinput["dockerimg_owner"] = f"{identity.owner}@{identity.started}"

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", {}).get("dockerimg")
        if not output:  # the worker did not use Docker
            return
        docker = _session(self.config)
        docker.stats.merge(Stats.from_dict(output["stats"]))
        docker.problems += output["problems"]
        self.config.stash[KEPT_KEY] += output["kept"]
        self.config.stash[WORKERS_USED_KEY] |= bool(output["used"])


def _uses_docker(item: pytest.Item) -> bool:
    # Every Docker fixture depends on docker_engine, and fixturenames is the closure.
    return "docker_engine" in getattr(item, "fixturenames", ())


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """The engine line of the header, written once collection shows that a test uses Docker:
    a run without Docker tests does not contact the engine at all."""
    verbose = config.option.verbose >= 0 and not config.option.no_header
    if not verbose or config.option.collectonly or hasattr(config, "workerinput"):
        return []
    if not config.stash[MARKED_KEY] and not any(_uses_docker(item) for item in items):
        return []
    docker = _session(config)
    engine = docker.probe()
    if not isinstance(engine, EngineUnavailable):
        return [f"docker: {engine.describe()}; {engine.reach.describe()}"]
    then = "fail (--docker-required)" if docker.settings.required else "be skipped"
    return [f"docker: {engine}; tests that need Docker will {then}"]


# ---------------------------------------------------------------------------- marker validation


def _validate_markers(item: pytest.Item) -> None:
    config = item.config
    image = container = None
    for mark in item.iter_markers():  # closest first; one walk of the node chain, not two
        if mark.name == "docker_image" and image is None:
            image = mark
        elif mark.name == "docker_container" and container is None:
            container = mark
    if image is None and container is None:
        return
    config.stash[MARKED_KEY] = True
    if image is not None:
        from .build import spec_from_marker

        spec_from_marker(image.args, image.kwargs, item.path.parent)
    if container is not None:
        from .containers import check_run_spec

        if container.args:
            raise DockerImgError(f"docker_container takes keyword arguments only, got {container.args!r}")
        check_run_spec(container.kwargs, config.stash[SETTINGS_KEY].bind_host or "127.0.0.1")


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    result = yield
    items = result if isinstance(result, list) else [result]
    for item in items:
        if isinstance(item, pytest.Item):
            try:
                _validate_markers(item)
            except DockerImgError as error:
                # This test fails at its setup; the others still run, and each bad one is reported.
                item.stash[MARKER_ERROR_KEY] = f"invalid docker marker on {item.nodeid}: {error}"
                plugins = item.config.pluginmanager
                if not plugins.has_plugin("dockerimg-marker-errors"):
                    plugins.register(_MarkerErrors(), "dockerimg-marker-errors")
    return result


class _MarkerErrors:
    """Fails the tests with a bad docker marker; registered only when a run has one."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        error = item.stash.get(MARKER_ERROR_KEY, None)
        if error is not None:
            pytest.fail(error, pytrace=False)


# ---------------------------------------------------------------------------- fixtures


def _docker(request: pytest.FixtureRequest) -> DockerSession:
    return _session(request.config)


@pytest.fixture(scope="session")
def docker_engine(request: pytest.FixtureRequest) -> Engine:
    """The Docker engine (`.client`, `.host`, `.version`); tests that use Docker are skipped
    (or, with --docker-required, fail) when none answers."""
    docker = _docker(request)
    engine = docker.probe()
    if isinstance(engine, EngineUnavailable):
        if docker.settings.required:
            pytest.fail(f"Docker is required (--docker-required), but {engine}", pytrace=False)
        pytest.skip(f"Docker: {engine}")
    _terminate_as_interrupt(request.config)
    return docker.engine()


@pytest.fixture(scope="session")
def docker_settings(request: pytest.FixtureRequest) -> Settings:
    """The session's effective options (command line, else ini, else default; `bind_host` as
    worked out for this engine)."""
    docker = _docker(request)
    return dataclasses.replace(docker.settings, bind_host=docker.bind_host)


@pytest.fixture(scope="session")
def docker_build(request: pytest.FixtureRequest, docker_engine: Engine) -> Callable[..., Image]:
    """`build(path, *, dockerfile, tag, buildargs, target, labels, nocache, pull) -> Image`; a
    relative path starts at the folder of the file that calls it. Each spec is built once."""
    from .build import BuildSpec

    docker = _docker(request)

    def build(path: str | Path, *, base_dir: str | Path | None = None, **options: Any) -> Image:
        caller = sys._getframe(1).f_code.co_filename  # its folder is where a relative path starts
        return docker.build(BuildSpec.create(path, base_dir=base_dir or Path(caller).parent, **options))

    return build


@pytest.fixture
def docker_image(request: pytest.FixtureRequest, docker_engine: Engine) -> Image:
    """The image built from the closest `@pytest.mark.docker_image(path, ...)`."""
    marker = request.node.get_closest_marker("docker_image")
    if marker is None:
        pytest.fail(
            f"{request.node.nodeid} uses the docker_image fixture but has no "
            "@pytest.mark.docker_image(path) marker: put one on the test, its class or its module",
            pytrace=False,
        )
    from .build import spec_from_marker

    return _docker(request).build(spec_from_marker(marker.args, marker.kwargs, request.node.path.parent))


def _close(request: pytest.FixtureRequest, scope: Scope, *, failed: bool, where: str) -> None:
    """End a scope; say how to reach the containers it keeps."""
    kept = {entry.ref for entry in _docker(request).close_scope(scope, failed=failed)}
    containers = [container for container in scope.containers if container.id in kept]
    request.config.stash[KEPT_KEY] += _describe_kept(containers, where)


def _describe_kept(containers: list[Container], where: str) -> list[str]:
    lines = []
    for container in containers:
        published = ", ".join(container.published())
        lines.append(
            f"kept {container.name} ({container.id[:12]}) from {where}: "
            f"docker exec -it {container.name} sh" + (f"; {published}" if published else "")
        )
    return lines


def _docker_scope(request: pytest.FixtureRequest, docker_engine: Engine) -> Iterator[Scope]:
    """The containers and networks of one scope (a test, class, module or the session), behind
    `docker_run*` and `docker_network*` of that scope; removed when the scope ends (containers,
    then networks), or kept by --keep-containers when a test in the scope failed."""
    docker = _docker(request)
    node = request.node
    if request.scope == "session":
        scope = docker.session_scope
    else:  # a name unique in the ledger; containers are named after the part before "@"
        scope = docker.scope(f"{node.name}@{id(node):x}", background_teardown=request.scope == "function")
    node.stash.setdefault(SCOPES_KEY, {})[request.scope] = scope
    yield scope
    failed = node.stash.get(FAILED_KEY, False) or (
        request.scope == "session" and request.session.testsfailed > 0
    )
    _close(request, scope, failed=failed, where="the session" if request.scope == "session" else node.nodeid)


# One implementation per fixture, registered at each scope (as pytest-mock does).
_scope_function = pytest.fixture(name="_docker_scope_function")(_docker_scope)
_scope_class = pytest.fixture(name="_docker_scope_class", scope="class")(_docker_scope)
_scope_module = pytest.fixture(name="_docker_scope_module", scope="module")(_docker_scope)
_scope_session = pytest.fixture(name="_docker_scope_session", scope="session")(_docker_scope)


def _scope_of(request: pytest.FixtureRequest) -> Scope:
    scope: Scope = request.getfixturevalue(f"_docker_scope_{request.scope}")
    return scope


def _run(request: pytest.FixtureRequest) -> Callable[..., Container]:
    """`run(image_or_ref, *, ports, publish_all, command, environment, volumes, wait, name,
    network, aliases, **run_kwargs) -> Container`: `docker run -d`. Every container it started is
    removed when the fixture's scope ends: the test (`docker_run`), the class
    (`docker_run_class`), the module (`docker_run_module`) or the session (`docker_run_session`)."""
    return _scope_of(request).runner.run


docker_run = pytest.fixture(name="docker_run")(_run)
docker_run_class = pytest.fixture(name="docker_run_class", scope="class")(_run)
docker_run_module = pytest.fixture(name="docker_run_module", scope="module")(_run)
docker_run_session = pytest.fixture(name="docker_run_session", scope="session")(_run)


def _network(request: pytest.FixtureRequest) -> Callable[..., Network]:
    """`network(name=None, *, internal=False) -> Network`: `docker network create`. Pass it to
    `docker_run(..., network=net, aliases=["db"])`. Each network is removed after the containers
    of its scope: the test (`docker_network`) or the session (`docker_network_session`)."""
    return _scope_of(request).networks.create


docker_network = pytest.fixture(name="docker_network")(_network)
docker_network_session = pytest.fixture(name="docker_network_session", scope="session")(_network)


@pytest.fixture
def docker_container(
    request: pytest.FixtureRequest, docker_image: Image, docker_run: Callable[..., Container]
) -> Container:
    """The marked image, run with the closest `@pytest.mark.docker_container(...)` arguments."""
    marker = request.node.get_closest_marker("docker_container")
    return docker_run(docker_image, **(marker.kwargs if marker else {}))


@pytest.fixture(scope="session")
def docker_registry(request: pytest.FixtureRequest, docker_engine: Engine) -> Registry:
    """A private registry for the session (`registry:2` on a random loopback port), or the one
    given by --docker-registry-url."""
    return _docker(request).registry


# ---------------------------------------------------------------------------- reports, summary


def _plugin_error_repr(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
    """A plugin error as the user needs it: their own lines and the message, not the frames of
    the plugin and of pytest between them (--fulltrace shows everything)."""
    style = item.config.getoption("tbstyle", "auto")
    if item.config.getoption("fulltrace", False) or style not in ("auto", "long", "short"):
        return None
    internal = _internal_dirs()
    users = excinfo.traceback.filter(lambda entry: not str(entry.path).startswith(internal))
    if not users:  # raised by a fixture of the plugin itself: the message is all there is
        return "\n".join(
            f"E   {line}" for line in f"{type(excinfo.value).__qualname__}: {excinfo.value}".splitlines()
        )
    return excinfo.getrepr(
        style="long" if style == "auto" else style, tbfilter=lambda _: users, funcargs=True
    )


class _Reports:
    """The per-test report hook, registered when the session first uses Docker: until then,
    tests cost the plugin nothing."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        error = call.excinfo.value if call.excinfo is not None else None
        if call.excinfo is not None and isinstance(error, DockerImgError) and report.failed:
            report.longrepr = _plugin_error_repr(item, call.excinfo) or report.longrepr
        if not report.failed:
            return report
        from .containers import capped_log

        for node in item.listchain():
            node.stash[FAILED_KEY] = True
        if call.excinfo is not None and _from_the_engine(call.excinfo):
            report.longrepr = _engine_failure(item, call.excinfo)
        if isinstance(error, BuildError) and error.log:
            log = error.log if isinstance(error.log, str) else "\n".join(error.log)
            report.sections.append(("docker build log", capped_log(log, "the whole log: docker build")))
        if isinstance(error, (ContainerExited, NotReady)) and error.logs:
            how = _how_to_see_all(item, error.name)
            report.sections.append((f"docker logs {error.name}", capped_log(error.logs, how)))
        if report.when in ("setup", "call"):
            for container in _containers_used(item):
                try:
                    log = container.report_log(_how_to_see_all(item, container.name)) or "(no output)"
                except Exception as failure:  # the engine may be gone: the report must still be made
                    log = f"(the logs could not be read: {type(failure).__name__}: {failure})"
                report.sections.append((f"docker logs {container.name}", log))
        return report


def _containers_used(item: pytest.Item) -> list[Container]:
    """The containers a test used: those of its own `docker_run`, and those started so far by
    the class, module and session scopes whose fixtures the test requested (directly or through
    other fixtures)."""
    fixtures = set(getattr(item, "fixturenames", ()))
    used = []
    for node in item.listchain():
        for name, scope in node.stash.get(SCOPES_KEY, {}).items():
            if node is item or {f"docker_run_{name}", f"docker_network_{name}"} & fixtures:
                used += scope.containers
    return used


def _how_to_see_all(item: pytest.Item, name: str) -> str:
    if item.config.stash[SETTINGS_KEY].keep_containers == "never":
        return f"to see all of it, run with --keep-containers failed, then: docker logs {name}"
    return f"all of it: docker logs {name}"


def _from_the_engine(excinfo: pytest.ExceptionInfo[BaseException]) -> bool:
    """A lost or frozen engine: a connection error or timeout raised while the plugin or
    docker-py (not the test's own HTTP calls) talked to it."""
    import docker
    import requests

    if not isinstance(excinfo.value, (requests.ConnectionError, requests.Timeout)):
        return False
    client_dirs = (_internal_dirs()[0], str(Path(docker.__file__ or "").resolve().parent))
    return any(str(entry.path).startswith(client_dirs) for entry in excinfo.traceback)


def _engine_failure(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    import requests

    docker = _session(item.config)
    engine = docker.probe()
    plugin_dir = _internal_dirs()[0]
    doing = next(
        (entry.name for entry in reversed(excinfo.traceback) if str(entry.path).startswith(plugin_dir)),
        "a call to it",
    )
    what = (
        f"did not answer within {docker.settings.api_timeout:g} s (--docker-api-timeout)"
        if isinstance(excinfo.value, requests.Timeout)
        else "stopped answering"
    )
    return (
        f"the Docker engine at {engine.address} {what} while the plugin was in {doing}: "
        f"{type(excinfo.value).__name__}: {str(excinfo.value)[:300]}\n"
        "Is dockerd still running? Check with: docker info"
    )


@pytest.hookimpl(trylast=True)  # after pytest's own teardown of the fixtures (e.g. on Ctrl-C)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if SESSION_KEY not in config.stash and not config.stash[WORKERS_USED_KEY]:
        return  # Docker was not used: nothing to remove, nothing to report to the controller
    docker = _session(config)
    docker.finish(
        session_failed=session.testsfailed > 0,
        workers_used_docker=config.stash[WORKERS_USED_KEY],
    )
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["dockerimg"] = {
            "stats": docker.stats.to_dict(),
            "problems": docker.problems,
            "kept": config.stash[KEPT_KEY],
            "used": docker.used,
        }


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    docker = config.stash.get(SESSION_KEY, None)
    if docker is None:
        return
    kept = config.stash[KEPT_KEY]
    swept = docker.swept
    if docker.stats.empty and not docker.problems and not kept and not (swept and swept.total):
        return
    terminalreporter.section("docker")
    for line in docker.stats.lines():
        terminalreporter.write_line(line)
    if swept and swept.total:
        terminalreporter.write_line(
            f"removed what dead sessions left behind: {swept.containers} container(s), "
            f"{swept.networks} network(s), {swept.images} image(s), {swept.volumes} volume(s)"
        )
    for line in kept:
        terminalreporter.write_line(line)
    for problem in docker.problems:
        terminalreporter.write_line(f"cleanup problem: {problem}", yellow=True)
