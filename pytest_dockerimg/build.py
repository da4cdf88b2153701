"""Image builds: the build spec (validated), content-hash reuse, and the session's `Builder`,
which builds each spec once through the chosen builder (builders/: BuildKit or classic).

A spec is built once per session; with xdist a file lock per spec makes the other workers wait
and then take the image the first one recorded instead of building it again. An image kept by
`--keep-images` is reused by a later session when its inputs are unchanged.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker.errors import ImageNotFound
from docker.utils import parse_repository_tag
from docker.utils.build import match_tag

from .builders import BuildFailed, ImageBuilder, MadeImage
from .context import base_images, context_files, inputs_digest
from .engine import Engine
from .errors import BuildError, InvalidSpec
from .images import Image
from .labels import LABEL, Identity, process_alive
from .ledger import Keep, Ledger
from .state import KeptImages, Owner, SessionFiles, TagClaims
from .stats import BuildRecord, Stats
from .tags import full_tag, image_of, image_tags, others_tags, record_tag, session_tags

REMOTE_PREFIXES = ("http://", "https://", "git://", "github.com/", "git@")
BUILD_OPTIONS = (
    "dockerfile",
    "tag",
    "buildargs",
    "target",
    "labels",
    "nocache",
    "pull",
    "secrets",
    "platform",
)
_SECRET_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?$")


def _text_map(name: str, value: object, *, reserved: str | None = None) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise InvalidSpec(f"{name} must be a dict of names to values, got {value!r}")
    pairs = []
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidSpec(f"{name}: keys must be non-empty strings, got {key!r}")
        if reserved and key.startswith(reserved):
            raise InvalidSpec(f"{name}: {key!r} is reserved for the plugin's own labels")
        if item is None or not isinstance(item, (str, int, float, bool)):
            raise InvalidSpec(f"{name}[{key!r}] must be a string, got {item!r}")
        pairs.append((key, str(item)))
    return tuple(sorted(pairs))


def _secrets(value: object, base: Path) -> tuple[tuple[str, str], ...]:
    """`secrets={"token": "path/to/file"}` (`docker build --secret id=token,src=...`): ids to
    readable files, relative paths starting at `base`."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise InvalidSpec(f"secrets must be a dict of secret ids to file paths, got {value!r}")
    pairs = []
    for ident, path in value.items():
        if not isinstance(ident, str) or not _SECRET_ID.match(ident):
            raise InvalidSpec(f"secrets: ids are names of letters, digits, '_', '.' or '-', got {ident!r}")
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise InvalidSpec(f"secrets[{ident!r}] must be the path of a file, got {path!r}")
        file = Path(path) if Path(path).is_absolute() else base / path
        if not file.is_file():
            raise InvalidSpec(f"secrets[{ident!r}]: no file at {file}")
        pairs.append((ident, str(file.resolve())))
    return tuple(sorted(pairs))


def _platform(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _PLATFORM.match(value):
        raise InvalidSpec(
            f"platform must be one platform as os/arch[/variant], such as linux/amd64 or linux/arm64/v8, "
            f"got {value!r}"
        )
    return value


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidSpec(f"{name} must be True or False, got {value!r}")
    return value


@dataclass(frozen=True)
class BuildSpec:
    """What to build, as `docker build` takes it. Build with `BuildSpec.create`, which validates."""

    context: str
    dockerfile: str | None = None
    tag: str | None = None
    buildargs: tuple[tuple[str, str], ...] = ()
    target: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    nocache: bool = False
    pull: bool = False
    secrets: tuple[tuple[str, str], ...] = ()
    platform: str | None = None

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        base_dir: str | os.PathLike[str] | None = None,
        dockerfile: str | os.PathLike[str] | None = None,
        tag: str | None = None,
        buildargs: Mapping[str, str] | None = None,
        target: str | None = None,
        labels: Mapping[str, str] | None = None,
        nocache: bool = False,
        pull: bool = False,
        secrets: Mapping[str, str | os.PathLike[str]] | None = None,
        platform: str | None = None,
    ) -> BuildSpec:
        """Validate a build request; `path` is relative to `base_dir` (the test file's folder)."""
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise InvalidSpec(f"the build context must be a folder path or a git URL, got {path!r}")
        if tag is not None and (not isinstance(tag, str) or not match_tag(tag)):
            raise InvalidSpec(
                f"invalid tag {tag!r}: expected a lowercase name with an optional :tag, "
                "such as test/static_web:v1"
            )
        if target is not None and (not isinstance(target, str) or not target):
            raise InvalidSpec(f"target must be the name of a build stage, got {target!r}")
        if dockerfile is not None and (not isinstance(dockerfile, (str, os.PathLike)) or not str(dockerfile)):
            raise InvalidSpec(f"dockerfile must be a file name or path, got {dockerfile!r}")
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        spec_args = {
            "dockerfile": os.fspath(dockerfile) if dockerfile is not None else None,
            "tag": tag,
            "buildargs": _text_map("buildargs", buildargs),
            "target": target,
            "labels": _text_map("labels", labels, reserved=LABEL),
            "nocache": _flag("nocache", nocache),
            "pull": _flag("pull", pull),
            "secrets": _secrets(secrets, base),
            "platform": _platform(platform),
        }
        text = os.fspath(path)
        if text.startswith(REMOTE_PREFIXES):
            return cls(context=text, **spec_args)  # type: ignore[arg-type]
        context = Path(text) if Path(text).is_absolute() else base / text
        if not context.is_dir():
            where = "" if Path(text).is_absolute() else f" (relative paths start at {base})"
            problem = "is not a folder" if context.exists() else "does not exist"
            raise InvalidSpec(f"build context {context} {problem}{where}")
        spec = cls(context=str(context.resolve()), **spec_args)  # type: ignore[arg-type]
        if not spec.dockerfile_path.is_file():
            hint = "" if dockerfile else "; pass dockerfile= to use another file"
            raise InvalidSpec(f"no Dockerfile at {spec.dockerfile_path}{hint}")
        return spec

    @property
    def remote(self) -> bool:
        return self.context.startswith(REMOTE_PREFIXES)

    @property
    def dockerfile_path(self) -> Path:
        """The Dockerfile on disk (relative names are relative to the context)."""
        name = Path(self.dockerfile or "Dockerfile")
        return name if name.is_absolute() else Path(self.context) / name

    @property
    def name(self) -> str:
        return self.tag or (self.context if self.remote else Path(self.context).name)

    def describe(self) -> str:
        return f"{self.context} (tag {self.tag})" if self.tag else self.context

    @property
    def key(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()[:20]


def spec_from_marker(args: tuple[object, ...], kwargs: Mapping[str, object], base_dir: Path) -> BuildSpec:
    """The spec of `@pytest.mark.docker_image(path, **options)`, with errors that say what is wrong."""
    unknown = sorted(set(kwargs) - {"path", *BUILD_OPTIONS})
    if unknown:
        raise InvalidSpec(
            f"unknown argument(s) {', '.join(unknown)}; docker_image takes path and "
            f"{', '.join(BUILD_OPTIONS)}"
        )
    positional = list(args) + ([kwargs["path"]] if "path" in kwargs else [])
    if len(positional) != 1:
        raise InvalidSpec(
            f"docker_image takes one build context path (the folder with the Dockerfile), "
            f"got {len(positional)}: {positional!r}"
        )
    options = {key: value for key, value in kwargs.items() if key != "path"}
    return BuildSpec.create(positional[0], base_dir=base_dir, **options)  # type: ignore[arg-type]


def _record_of(result: Image | BuildError) -> dict[str, Any]:
    """What other processes of the session need to know of a build: the image, or the error
    (its constructor's arguments, which it keeps as attributes)."""
    if isinstance(result, BuildError):
        return {"error": {name: getattr(result, name) for name in inspect.signature(BuildError).parameters}}
    return {"image": result.id}


class Builder:
    """Builds `BuildSpec`s once per session, reusing a kept image when the inputs are unchanged.
    Every image it makes and every tag it moves is recorded in the session's ledger first.
    `image_builder` gives the builder for a spec (BuildKit or classic); it is asked for at the
    first real build, since choosing BuildKit runs the docker CLI."""

    def __init__(
        self,
        engine: Engine,
        identity: Identity,
        ledger: Ledger,
        image_builder: Callable[[BuildSpec], ImageBuilder],
        *,
        no_cache: bool = False,
        pull: bool = False,
        progress: Callable[[str], None] | None = None,
        stats: Stats | None = None,
    ) -> None:
        self.engine = engine
        self.identity = identity
        self.ledger = ledger
        self._image_builder = image_builder
        self.no_cache = no_cache
        self.pull = pull
        self.progress = progress
        self.stats = stats if stats is not None else Stats()
        self.files = SessionFiles(identity.session)
        self.tags: dict[str, str] = {}  # tag -> the image this session built under it
        self._built: dict[BuildSpec, Image | BuildError] = {}
        self._claims: TagClaims | None = None

    def build(self, spec: BuildSpec) -> Image:
        """The image of `spec`: built by the first call of the session (in any xdist worker);
        later calls get the same image, or the same `BuildError`."""
        result = self._built.get(spec)
        if result is None:
            with self.files.build_lock(spec.key):
                record = self.files.read_build(spec.key)
                if record is None:
                    try:
                        result = self._reuse_or_build(spec)
                    except BuildError as error:
                        result = error
                    self.files.write_build(spec.key, _record_of(result))
                else:
                    result = self._from_record(spec, record)
            self._built[spec] = result
            if isinstance(result, Image) and spec.tag:
                self.tags[full_tag(spec.tag)] = result.id
        if isinstance(result, BuildError):
            raise result.with_traceback(None)  # the same error again, raised from here
        return result

    def _from_record(self, spec: BuildSpec, record: dict[str, Any]) -> Image | BuildError:
        """What another process of the session built (or failed to build) for `spec`."""
        if "error" in record:
            return BuildError(**record["error"])
        why = "built for the session by another worker"
        return self._without_build(spec, record["image"], why, 0.0, shared=True)

    def _without_build(
        self, spec: BuildSpec, image_id: str, why: str, seconds: float, *, shared: bool = False
    ) -> Image:
        """An image that `spec` gets without a `docker build` of its own."""
        self.stats.add_build(BuildRecord(spec.name, seconds, 0, 0, reused=True, shared=shared))
        return Image(
            self.engine.client.images.get(image_id),
            ref=spec.tag,
            reused=True,
            build_log=f"reused {image_id[:19]}: {why}",
            build_seconds=0.0,
        )

    def _reuse_or_build(self, spec: BuildSpec) -> Image:
        started = time.monotonic()
        nocache = spec.nocache or self.no_cache
        pull = spec.pull or self.pull
        digest = None if spec.remote else self._digest(spec)
        kept = KeptImages()
        earlier = kept.get(spec.key)
        reusable = digest and earlier and earlier["digest"] == digest and not nocache and not pull
        if earlier and reusable and image_of(self.engine.api, earlier["id"]) == earlier["id"]:
            if spec.tag:
                self._take_tag(spec.tag, earlier["id"])
            return self._without_build(
                spec, earlier["id"], "a kept image with unchanged inputs", time.monotonic() - started
            )
        try:
            outcome = self._image_builder(spec).build(
                spec, nocache=nocache, pull=pull, progress=self.progress
            )
        except BuildFailed as failure:
            self._record(spec, failure.made)
            self.stats.add_build(BuildRecord(spec.name, time.monotonic() - started, 0, 0, failed=True))
            raise failure.error from None
        built = self.engine.client.images.get(outcome.image_id)
        self._record(spec, outcome.made, {outcome.image_id: built.attrs.get("RepoTags") or []})
        image = Image(
            built,
            ref=spec.tag,
            build_log=outcome.log,
            steps=outcome.steps,
            build_seconds=outcome.seconds,
        )
        if spec.tag:
            replaces_kept = earlier and earlier["id"] != image.id and self.ledger.policy.images
            superseded = earlier["id"] if earlier and replaces_kept else None
            self._take_tag(spec.tag, image.id, superseded=superseded)
            image.reload()
        if digest and self.ledger.policy.images:
            kept.put(spec.key, digest, image.id)
        cached = sum(step.cached for step in image.steps)
        self.stats.add_build(BuildRecord(spec.name, image.build_seconds or 0.0, len(image.steps), cached))
        return image

    def _record(
        self, spec: BuildSpec, made: tuple[MadeImage, ...], tags: Mapping[str, list[str]] | None = None
    ) -> None:
        """Record the images a build made, except one that was already someone's: the same
        inputs give the same image, and a build can end on an image that the user (or a session
        that keeps it) has tagged. Its removal would take their tags with it."""
        for image in made:
            current = (tags or {}).get(image.id)
            if current is None:
                current = image_tags(self.engine.api, image.id)
            if others_tags(current, session_tags([self.ledger], image.id)):
                continue
            keep: Keep | None = "never" if image.disposable else None
            hold = spec.key if image.hold else ""
            self.ledger.record("image", image.id, prune=image.prune, hold=hold, keep=keep)

    def _take_tag(self, tag: str, image_id: str, *, superseded: str | None = None) -> None:
        """Move `tag` onto the session's image (recorded first, given back at the end). An image
        that `--keep-images` kept earlier under this spec and that this build replaces is not
        given the tag back: it goes at the end instead of piling up."""
        previous = image_of(self.engine.api, tag)
        if previous is not None and previous == superseded:
            self.ledger.record("image", previous, keep="never")
            previous = None
        record_tag(self.ledger, self.engine.api, tag, image_id, previous=previous or "")
        repository, name = parse_repository_tag(tag)
        self.engine.api.tag(image_id, repository, name or "latest", force=True)
        if self._claims is None:
            self._claims = TagClaims(engine=self.engine.endpoint or self.engine.address)
        identity = self.identity
        other = self._claims.claim(
            tag, identity.session, Owner(identity.owner, identity.started, identity.host), image_id
        )
        if other and process_alive(int(other["pid"]), int(other["started"])) and self.progress:
            self.progress(
                f"the tag {tag} is also built by a live session (pid {other['pid']}): it now names "
                "this session's image; each session's docker_run of that tag runs its own build"
            )

    def release_claims(self) -> None:
        if self._claims is not None:
            for tag in self.tags:
                self._claims.release(tag, self.identity.session)

    def _digest(self, spec: BuildSpec) -> str | None:
        """The inputs digest, or None when a base image cannot be resolved locally."""
        dockerfile_text = spec.dockerfile_path.read_text()
        bases = base_images(dockerfile_text)
        if bases is None:
            return None
        base_ids = []
        for base in bases:
            try:
                base_ids.append(str(self.engine.client.images.get(base).id))
            except ImageNotFound:
                return None
        context = Path(spec.context)
        try:
            dockerfile_rel = str(spec.dockerfile_path.relative_to(context))
        except ValueError:
            dockerfile_rel = str(spec.dockerfile_path)
        return inputs_digest(
            context,
            context_files(context, dockerfile_rel),
            dockerfile=dockerfile_rel,
            dockerfile_text=dockerfile_text,
            buildargs=dict(spec.buildargs),
            target=spec.target,
            labels=dict(spec.labels),
            base_ids=base_ids,
        )
