"""`Registry`: a private registry for the session (the `registry:2` image on a random loopback
port, its storage in a labelled volume) or an existing one, with push, pull (by tag or digest),
catalog, tags and manifest digests.

docker-py's push and pull report failures in the stream instead of raising; here they raise
`RegistryError` with the engine's message.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import requests
from docker.errors import APIError, DockerException, ImageNotFound
from docker.utils import parse_repository_tag

from .containers import Container, Runner
from .engine import Engine
from .errors import DockerImgError, RegistryError
from .images import Image
from .ledger import Ledger
from .ports import netloc
from .reach import is_loopback
from .tags import image_of, pull_recorded, put_tag
from .wait import http

REGISTRY_STORAGE = "/var/lib/registry"
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


def repository_of(ref: str) -> str:
    """The repository of a ref without its registry host and tag:
    `registry.example.com:5000/team/app:v1` -> `team/app`, `test/app:v1` -> `test/app`."""
    name, _ = parse_repository_tag(ref)
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return rest
    return name


def _stream_errors(chunks: Iterable[Mapping[str, Any]]) -> list[str]:
    errors = []
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            errors.append(str(chunk.get("error") or detail.get("message") or chunk))
    return errors


def _failure(error: Exception) -> str:
    """The engine's words for a failed push or pull. docker-py raises KeyError for an error
    body without a "message" (podman's push errors): the HTTP error behind it has the body."""
    if isinstance(error, KeyError) and isinstance(error.__context__, requests.HTTPError):
        response = error.__context__.response
        try:
            body = response.json() if response is not None else {}
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        detail = body.get("errorDetail") or {}
        return str(body.get("error") or detail.get("message") or error.__context__)
    if isinstance(error, KeyError):
        raise error
    return str(getattr(error, "explanation", None) or error)


class Registry:
    """A registry that the engine pushes to (`address`) and that tests query over HTTP (`url`)."""

    def __init__(
        self, engine: Engine, address: str, url: str, ledger: Ledger, container: Container | None = None
    ) -> None:
        self.engine = engine
        self.address = address
        self.url = url
        self.ledger = ledger
        self.container = container
        self._http = requests.Session()
        self._http.trust_env = False

    def __repr__(self) -> str:
        return f"<Registry {self.address}>"

    def push(self, image: Image | str, repository: str | None = None, tag: str = "latest") -> str:
        """Tag `image` as `ADDRESS/repository:tag` and push it; returns that ref."""
        source = image.id if isinstance(image, Image) else image
        image_id = image_of(self.engine.api, source) if isinstance(source, str) and source else None
        if image_id is None:
            raise RegistryError(
                f"push: no such image {source!r} in the engine; build it first (docker_build) or "
                "pass an Image, an image id or the ref of an image that exists"
            )
        if repository is None:
            name = image.ref if isinstance(image, Image) else image
            if name.startswith("sha256:"):
                raise DockerImgError(f"push: image {source} has no name; pass repository=")
            repository = repository_of(name)
        target = f"{self.address}/{repository}"
        ref = f"{target}:{tag}"
        try:
            put_tag(self.ledger, self.engine.api, image_id, ref)
        except (APIError, ImageNotFound) as error:
            raise RegistryError(
                f"push: cannot tag {source} as {ref}: {getattr(error, 'explanation', None) or error}"
            ) from None
        try:
            errors = _stream_errors(self.engine.api.push(target, tag=tag, stream=True, decode=True))
        except (DockerException, requests.RequestException, KeyError) as error:
            errors = [_failure(error)]
        if errors:
            raise RegistryError(f"push of {ref} to the registry at {self.address} failed: {errors[-1]}")
        return ref

    def pull(self, ref: str) -> Image:
        """Pull `ref` (`ADDRESS/repo:tag`, or `ADDRESS/repo@sha256:...` by digest) from the
        registry into the engine; a local tag or digest reference that the pull made goes at the
        end of the session."""
        errors: list[str] = []

        def pull() -> None:
            try:
                errors.extend(_stream_errors(self.engine.api.pull(ref, stream=True, decode=True)))
            except (DockerException, requests.RequestException, KeyError) as error:
                errors.append(_failure(error))

        pull_recorded(self.ledger, self.engine.api, ref, pull)
        if errors:
            raise RegistryError(f"pull of {ref} from the registry at {self.address} failed: {errors[-1]}")
        return Image(self.engine.client.images.get(ref), ref=ref)

    def _get(self, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self._http.get(f"{self.url}{path}", timeout=5, **kwargs)
        except requests.RequestException as error:
            raise RegistryError(f"the registry at {self.url} does not answer GET {path}: {error}") from None

    def catalog(self) -> list[str]:
        """The repositories in the registry (`GET /v2/_catalog`)."""
        response = self._get("/v2/_catalog")
        response.raise_for_status()
        return list(response.json().get("repositories") or [])

    def tags(self, repository: str) -> list[str]:
        """The tags of `repository` (`GET /v2/<repository>/tags/list`); [] when it is unknown."""
        response = self._get(f"/v2/{repository}/tags/list")
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return list(response.json().get("tags") or [])

    def digest(self, repository: str, tag: str = "latest") -> str:
        """The digest of the manifest the registry serves for `repository:tag` (`sha256:...`,
        its `Docker-Content-Digest`): what `docker pull ADDRESS/repository@sha256:...` fetches,
        and what `pull()` takes after `@`."""
        response = self._head(f"/v2/{repository}/manifests/{tag}")
        if response.status_code == 404:
            raise RegistryError(f"the registry at {self.url} has no manifest for {repository}:{tag}")
        response.raise_for_status()
        digest = response.headers.get("Docker-Content-Digest", "")
        if not digest.startswith("sha256:"):
            raise RegistryError(
                f"the registry at {self.url} gave no Docker-Content-Digest for {repository}:{tag}"
            )
        return digest

    def _head(self, path: str) -> requests.Response:
        try:
            return self._http.head(f"{self.url}{path}", timeout=5, headers={"Accept": MANIFEST_TYPES})
        except requests.RequestException as error:
            raise RegistryError(f"the registry at {self.url} does not answer HEAD {path}: {error}") from None

    def manifest(self, repository: str, tag: str = "latest") -> dict[str, Any]:
        """The image manifest the registry serves for `repository:tag`."""
        response = self._get(f"/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES})
        if response.status_code == 404:
            raise RegistryError(f"the registry at {self.url} has no manifest for {repository}:{tag}")
        response.raise_for_status()
        return dict(response.json())


def check_registry(url: str, timeout: float = 5.0) -> None:
    """Raise `RegistryError` unless `GET url/v2/` answers like a registry (200 or 401)."""
    session = requests.Session()
    session.trust_env = False
    try:
        response = session.get(f"{url}/v2/", timeout=timeout)
    except requests.RequestException as error:
        raise RegistryError(f"no registry answers at {url}: {type(error).__name__}: {error}") from None
    if response.status_code not in (200, 401):
        raise RegistryError(f"{url}/v2/ answered {response.status_code}: it does not look like a registry")


def existing_registry(engine: Engine, url: str, ledger: Ledger) -> Registry:
    """A registry that runs already (`--docker-registry-url`, e.g. `http://HOST:PORT`, as the
    engine pushes to it); nothing is started. A loopback address is the engine's loopback: where
    that is not this machine's (a remote engine), the tests read it at the engine's host."""
    scheme, _, address = url.partition("://")
    host, _, port = address.rpartition(":")
    read_url = url
    if is_loopback(host.strip("[]")) and not is_loopback(engine.host):
        read_url = f"{scheme}://{netloc(engine.host, int(port))}"
    check_registry(read_url)
    return Registry(engine, address, read_url, ledger)


def start_registry(runner: Runner, image: str, *, timeout: float) -> Registry:
    """Run `image` (registry:2 or compatible) on a random port, storage in a labelled volume."""
    engine = runner.engine
    volume = f"pytest-registry-{uuid.uuid4().hex[:8]}"
    try:
        engine.api.create_volume(
            volume, labels=runner.identity.labels("volume", keep=runner.ledger.policy.label_value)
        )
    except APIError as error:
        raise RegistryError(f"cannot create the registry's volume: {error.explanation or error}") from None
    runner.ledger.record("volume", volume, scope=runner.scope)
    try:
        container = runner.run(
            image,
            # The engine pushes from its own host, to 127.0.0.1 (which it treats as an insecure,
            # plain-HTTP registry by default): bind there, or everywhere when the tests reach
            # published ports elsewhere (a remote engine, --docker-reach-host).
            ports={
                "5000/tcp": (
                    "127.0.0.1" if is_loopback(engine.host) or engine.reach.network else "0.0.0.0",
                    None,
                )
            },
            volumes={volume: {"bind": REGISTRY_STORAGE, "mode": "rw"}},
            wait=http(5000, "/v2/", status=(200, 401)),
            name=f"pytest-registry-{uuid.uuid4().hex[:6]}",
            timeout=timeout,
        )
    except DockerImgError as error:
        raise RegistryError(f"the registry image {image} did not start: {error}") from error
    url = container.url(5000, "").rstrip("/")
    return Registry(engine, f"127.0.0.1:{container.port(5000)}", url, runner.ledger, container)
