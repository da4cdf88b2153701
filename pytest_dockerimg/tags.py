"""Tags the session puts on images (builds, commits, pushes, pulls): each is recorded in the
ledger, before it moves, with the image it named until then, so that teardown (or the watcher
of a killed session) gives it back."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

import docker
from docker.errors import ImageNotFound
from docker.utils import parse_repository_tag

from .engine import is_podman
from .ledger import Entry, Ledger


def full_tag(ref: str) -> str:
    """`repo` -> `repo:latest`; a ref with a tag or a digest stays as it is."""
    repository, tag = parse_repository_tag(ref)
    return ref if tag or "@" in ref else f"{repository}:latest"


def short_tag(tag: str) -> str:
    """A tag as Docker names it: podman reports images built or loaded here as `localhost/NAME`
    and Docker Hub names in full (`docker.io/library/busybox:latest`)."""
    for prefix in ("localhost/", "docker.io/library/", "docker.io/"):
        if tag.startswith(prefix):
            return tag[len(prefix) :]
    return tag


def same_tag(tag: str) -> str:
    """One spelling of a tag however the engine or the session wrote it: `repo:tag`."""
    return full_tag(short_tag(tag))


def session_tags(ledgers: Iterable[Ledger], image_id: str | None = None) -> set[str]:
    """The tags the session put on images (on `image_id` only, when given), as `same_tag` spells them."""
    return {
        same_tag(entry.ref)
        for ledger in ledgers
        for entry in ledger.entries
        if entry.kind == "tag" and image_id in (None, entry.image)
    }


def others_tags(tags: Iterable[str], own: Collection[str]) -> set[str]:
    """Of an image's `tags`, those the session did not put there: someone else's."""
    return {same_tag(tag) for tag in tags} - set(own)


def image_of(api: docker.APIClient, ref: str) -> str | None:
    """The id of the image `ref` names now, or None."""
    try:
        return str(api.inspect_image(ref)["Id"])  # type: ignore[no-untyped-call]
    except ImageNotFound:
        return None


def image_tags(api: docker.APIClient, ref: str) -> list[str]:
    """The `REPOSITORY:TAG` names of image `ref` (none when it is gone)."""
    try:
        return list(api.inspect_image(ref).get("RepoTags") or [])  # type: ignore[no-untyped-call]
    except ImageNotFound:
        return []


def record_tag(
    ledger: Ledger, api: docker.APIClient, ref: str, image_id: str, *, previous: str | None = None
) -> Entry:
    """Record that `ref` is about to name `image_id`; `previous` defaults to what it names now."""
    before = image_of(api, ref) if previous is None else previous
    return ledger.record("tag", full_tag(ref), image=image_id, previous=before or "")


def put_tag(ledger: Ledger, api: docker.APIClient, image_id: str, ref: str) -> Entry:
    """`docker tag IMAGE REF`, recorded first."""
    entry = record_tag(ledger, api, ref, image_id)
    repository, tag = parse_repository_tag(ref)
    api.tag(image_id, repository, tag or "latest", force=True)
    return entry


def untag(api: docker.APIClient, ref: str) -> None:
    """Take the tag `ref` off its image (`docker rmi --no-prune REF`): Docker removes the image
    too when that was its last tag and nothing is built on it. podman's compatible API removes
    the image with its last name whatever is built on it (the build cache with it), so there
    its own untag call takes the name alone, and the image stays as `<none>`."""
    if not is_podman(api):
        api.remove_image(ref, noprune=True)
        return
    wanted = same_tag(ref)
    for name in image_tags(api, ref):
        if same_tag(name) == wanted:  # podman's own spelling: docker.io/NAME, localhost/NAME
            repository, tag = parse_repository_tag(name)
            url = api._url("/libpod/images/{0}/untag", ref)  # type: ignore[attr-defined]
            api._raise_for_status(api._post(url, params={"repo": repository, "tag": tag}))  # type: ignore[attr-defined]


def pull_recorded(ledger: Ledger, api: docker.APIClient, ref: str, pull: Callable[[], object]) -> str | None:
    """Run `pull` (of `ref`) and record what it made: the tag, given back at the end, and the
    image when it was not in the engine before (an image that was, say a pushed build pulled
    back, is not the pull's to remove). The pulled image's id, or None when the pull failed."""
    previous = image_of(api, ref)
    present = set(api.images(all=True, quiet=True))
    pull()
    pulled = image_of(api, ref)
    if pulled is None or pulled == previous:
        return pulled
    if pulled not in present:
        ledger.record("image", pulled)
    record_tag(ledger, api, ref, pulled, previous=previous or "")
    return pulled
