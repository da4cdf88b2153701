"""The label that marks everything the plugin creates, and the identity of one test session.

Every container, image, volume and network the plugin creates carries one label,
`pytest-dockerimg=session=<id>,host=<name>,owner=<pid>,keep=<true|false>`: which session made
it, on which machine, which process owns that session (the watcher and the stale sweep check
that it is alive), and whether it was kept on purpose. Built images add `inputs=<digest>` (for
reuse when the build inputs are unchanged) and `prune=true` when built with --no-cache (their
layers can never serve as cache, so they go with the image). Teardown, the watcher and the sweep
find their resources by this label and never touch anything without it. One label rather than
several because the classic builder adds one build step per label; and every field is always
set, so that an image built FROM one of ours does not inherit its mark.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

LABEL = "pytest-dockerimg"
ALL = {"label": [LABEL]}


def new_session_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class Mark:
    """What the plugin's label says about a resource."""

    session: str
    host: str
    owner: int
    keep: bool = False
    inputs: str = ""
    prune: bool = False

    def value(self) -> str:
        fields = f"session={self.session},host={self.host},owner={self.owner},keep={str(self.keep).lower()}"
        return fields + f",inputs={self.inputs},prune={str(self.prune).lower()}"

    @classmethod
    def of(cls, labels: Mapping[str, str] | None) -> Mark | None:
        """The mark on a resource, or None when the plugin did not create it."""
        value = (labels or {}).get(LABEL)
        if not value:
            return None
        fields = dict(part.partition("=")[::2] for part in value.split(","))
        try:
            return cls(
                fields["session"],
                fields["host"],
                int(fields["owner"]),
                keep=fields.get("keep") == "true",
                inputs=fields.get("inputs", ""),
                prune=fields.get("prune") == "true",
            )
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True)
class Identity:
    """Which test session, owned by which process on which machine, creates resources."""

    session: str
    host: str
    owner: int

    @classmethod
    def create(cls, session: str | None = None, owner: int | None = None) -> Identity:
        return cls(session or new_session_id(), socket.gethostname(), owner or os.getpid())

    def labels(self, *, keep: bool = False, inputs: str = "", prune: bool = False) -> dict[str, str]:
        return {LABEL: Mark(self.session, self.host, self.owner, keep, inputs, prune).value()}

    def owns(self, labels: Mapping[str, str] | None) -> bool:
        mark = Mark.of(labels)
        return mark is not None and mark.session == self.session and mark.host == self.host
