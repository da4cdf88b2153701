"""Parsing of the classic builder's streamed output (and podman's, in its own words): log lines,
steps (cached or not, how long), the resulting image id, the failing step and the last good layer."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

_STEP = re.compile(r"^Step (?P<index>\d+)(?:/(?P<total>\d+))? : (?P<instruction>.*)$")
_LAYER = re.compile(r"^ ---> (?P<id>[0-9a-f]{12,64})$")
_EXIT_CODE = re.compile(r"returned a non-zero code: (?P<code>\d+)")
_BUILT = re.compile(r"^Successfully built (?P<id>[0-9a-f]{12,64})$")
# The engine colours the output of RUN steps; apt and others write it in pieces.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class BuildStep:
    """One Dockerfile instruction as the engine ran it."""

    index: int
    total: int | None
    instruction: str
    cached: bool
    seconds: float
    image_id: str | None

    def __str__(self) -> str:
        total = f"/{self.total}" if self.total else ""
        return f"Step {self.index}{total} : {self.instruction}"


@dataclass
class _OpenStep:
    index: int
    total: int | None
    instruction: str
    started: float
    cached: bool = False
    image_id: str | None = None
    appended: bool = False
    first_line: int = 0

    def close(self, now: float) -> BuildStep:
        return BuildStep(
            self.index, self.total, self.instruction, self.cached, round(now - self.started, 3), self.image_id
        )


@dataclass
class BuildLog:
    """Accumulates a build's stream chunks (`feed`) into lines, steps and the outcome.

    The classic builder appends one LABEL step per label given to the build; `appended` says how
    many. Steps are numbered as in the Dockerfile (`Step 4/7`), and the appended ones are left
    out of `steps` and shown as `Build label : LABEL ...` in the log.
    """

    on_step: Callable[[str], None] | None = None
    appended: int = 0
    clock: Callable[[], float] = time.monotonic
    lines: list[str] = field(default_factory=list)
    steps: list[BuildStep] = field(default_factory=list)
    image_id: str | None = None
    last_image_id: str | None = None
    error: str | None = None
    error_code: int | None = None
    _partial: str = ""
    _current: _OpenStep | None = None
    _stage: str = ""
    _stage_offset: int = 0

    @property
    def current_step(self) -> str | None:
        """The step being run, as the engine names it (`Step 4/7 : RUN ...`)."""
        if self._current is None:
            return None
        total = f"/{self._current.total}" if self._current.total else ""
        return f"Step {self._current.index}{total} : {self._current.instruction}"

    @property
    def failed_step(self) -> _OpenStep | None:
        return self._current if self.error is not None else None

    @property
    def failed_output(self) -> list[str]:
        """What the failing step printed (the lines after its `Step` line)."""
        return self.lines[self._current.first_line + 1 :] if self.failed_step and self._current else []

    @property
    def fresh_layers(self) -> list[str]:
        """The layers this build made (not taken from the cache), oldest first."""
        return [step.image_id for step in self.steps if step.image_id and not step.cached]

    def feed(self, chunk: Mapping[str, object]) -> None:
        if "stream" in chunk:
            self._text(str(chunk["stream"]))
        if "status" in chunk:  # image pull progress during FROM (--pull or a missing base)
            status = str(chunk["status"])
            ident = chunk.get("id")
            if self._current is not None:
                self._current.cached = False
            if "progress" not in chunk and status not in ("Downloading", "Extracting", "Waiting"):
                self._line(f"{ident}: {status}" if ident else status)
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and "ID" in aux:
            self.image_id = str(aux["ID"])
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail")
            detail = detail if isinstance(detail, Mapping) else {}
            self._flush()
            self.fail(
                str(chunk.get("error") or detail.get("message") or "the build failed"), detail.get("code")
            )

    def fail(self, message: str, code: object = None) -> None:
        self.error = message.strip()
        self.lines.append(self.error)
        found = _EXIT_CODE.search(self.error) or _PODMAN_EXIT_CODE.search(self.error)
        if isinstance(code, int) and code:
            self.error_code = code
        elif found:
            self.error_code = int(found["code"])

    def finish(self) -> None:
        """Close the last step once the stream has ended."""
        self._flush()
        if self._current is not None and self.error is None:
            if not self._current.appended:
                self.steps.append(self._current.close(self.clock()))
            self._current = None
        total = self.steps[-1].total if self.steps else None
        if self._stage and total:  # podman's earlier stages: the total is known now
            self.steps = [dataclasses.replace(step, total=step.total or total) for step in self.steps]

    def _text(self, text: str) -> None:
        text = self._partial + text
        *complete, self._partial = text.split("\n")
        for line in complete:
            self._line(line.rstrip("\r"))

    def _flush(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def _line(self, line: str) -> None:
        line = _ANSI.sub("", line)
        if match := _PODMAN_STAGE_STEP.match(line):
            line = self._podman_stage_step(match)
        line = podman_line(line)
        if not line.strip():
            return
        if match := _STEP.match(line):
            line = self._start_step(int(match["index"]), match["total"], match["instruction"])
        elif line.strip() == "---> Using cache" and self._current is not None:
            self._current.cached = True
        elif match := _LAYER.match(line):
            self.last_image_id = match["id"]
            if self._current is not None:
                self._current.image_id = match["id"]
        elif match := _BUILT.match(line):
            self.image_id = self.image_id or match["id"]
        self.lines.append(line)

    def _podman_stage_step(self, match: re.Match[str]) -> str:
        """podman numbers the steps of a multi-stage build per stage (`[3/3] STEP 2/4: ...`) and
        skips the stages the target does not need: number them on from the stages before, the
        total known in the last stage only."""
        if match["stage"] != self._stage:
            self._stage = match["stage"]
            self._stage_offset = len(self.steps) + (self._current is not None and not self._current.appended)
        index = self._stage_offset + int(match["index"])
        total = f"/{self._stage_offset + int(match['total'])}" if match["stage"] == match["stages"] else ""
        return f"Step {index}{total} : {match['instruction']}"

    def _start_step(self, index: int, engine_total: str | None, instruction: str) -> str:
        now = self.clock()
        if self._current is not None and not self._current.appended:
            self.steps.append(self._current.close(now))
        total = int(engine_total) - self.appended if engine_total else None
        appended = total is not None and index > total
        # FROM builds nothing: it counts as cached unless the base image had to be pulled.
        cached = instruction.upper().startswith("FROM ")
        self._current = _OpenStep(
            index, total, instruction, now, cached=cached, appended=appended, first_line=len(self.lines)
        )
        if appended:
            return f"Build label : {instruction}"
        line = self.current_step or instruction
        if self.on_step:
            self.on_step(line)
        return line


# podman's Docker-compatible build API speaks its own words: `STEP 2/4: RUN ...` (`[1/3] STEP 2/4:
# ...` in a multi-stage build), `--> Using cache <id>`, `--> <12 hex>`, and a failure ends in
# `exit status N`.
_PODMAN_STAGE_STEP = re.compile(
    r"^\[(?P<stage>\d+)/(?P<stages>\d+)\] STEP (?P<index>\d+)/(?P<total>\d+): (?P<instruction>.*)$"
)
_PODMAN_STEP = re.compile(r"^STEP (?P<index>\d+)(?:/(?P<total>\d+))?: (?P<instruction>.*)$")
_PODMAN_LAYER = re.compile(r"^--> (?P<id>[0-9a-f]{12,64})$")
_PODMAN_EXIT_CODE = re.compile(r"exit status (?P<code>\d+)")


def podman_line(line: str) -> str:
    """A line of podman's build output in the classic builder's words (others unchanged)."""
    if match := _PODMAN_STEP.match(line):
        total = f"/{match['total']}" if match["total"] else ""
        return f"Step {match['index']}{total} : {match['instruction']}"
    if line.startswith("--> Using cache "):
        return " ---> Using cache"
    if match := _PODMAN_LAYER.match(line):
        return f" ---> {match['id'][:12]}"
    return line
