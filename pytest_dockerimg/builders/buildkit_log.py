"""Parsing of BuildKit's progress, as the docker CLI prints it: `--progress=rawjson` (one JSON
status per line, buildx) or `--progress=plain` (`#5 [2/4] RUN ...` lines). BuildKit's build steps
(`[stage 2/4] RUN ...`) are mapped back to the Dockerfile's instructions, so that steps are
numbered as the Dockerfile counts them, as with the classic builder."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pytest_dockerimg.buildlog import BuildStep
from pytest_dockerimg.dockerfile import Dockerfile, Instruction

_STEP_NAME = re.compile(
    r"^\[(?:(?P<platform>[^\s\]/]+/[^\s\]]+) )?(?:(?P<stage>[^\s\]]+) )?"
    r"(?P<position>\d+)/(?P<total>\d+)\] (?P<text>.*)$",
    re.DOTALL,
)
_PLAIN = re.compile(r"^#(?P<id>\d+) (?P<rest>.*)$")
_OUTPUT = re.compile(r"^\d+\.\d+ (?P<text>.*)$")
_DONE = re.compile(r"^DONE (?P<seconds>\d+(?:\.\d+)?)s$")
_EXIT_CODE = re.compile(r"exit code: (?P<code>\d+)")
_FRACTION = re.compile(r"\.(\d+)")
_METADATA = "[internal] load metadata for "  # BuildKit resolving a FROM image
_PARSE_ERROR = re.compile(r"dockerfile parse error (?:on )?line (?P<line>\d+): (?P<what>.*)$", re.IGNORECASE)


def _timestamp(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    text = _FRACTION.sub(lambda m: "." + m[1][:6].ljust(6, "0"), value.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).timestamp()


@dataclass
class _Vertex:
    number: int
    name: str
    instruction: Instruction | None = None
    position: int = 0
    started: float | None = None
    seconds: float | None = None
    cached: bool = False
    done: bool = False
    error: str | None = None
    output: list[str] = field(default_factory=list)
    partial: dict[object, str] = field(default_factory=dict)  # per stream (stdout, stderr)


@dataclass
class BuildKitLog:
    """Accumulates the CLI's progress lines (`feed`) into the log text, the steps and the failure.

    `dockerfile` maps steps back to their instructions (None for a remote context: the steps are
    then numbered by their place in the stage)."""

    dockerfile: Dockerfile | None = None
    on_step: Callable[[str], None] | None = None
    lines: list[str] = field(default_factory=list)
    _vertices: dict[str, _Vertex] = field(default_factory=dict)

    def feed(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if line.startswith("{"):
            try:
                status = json.loads(line)
            except ValueError:
                status = None
            if isinstance(status, Mapping):
                self._json(status)
                return
        self.lines.append(line)
        if match := _PLAIN.match(line):
            self._plain(match["id"], match["rest"])

    # ---------------------------------------------------------------- the two formats

    def _plain(self, key: str, rest: str) -> None:
        vertex = self._vertices.get(key)
        if vertex is None:  # plain progress names a step when it starts
            self._started(self._vertex(key, rest))
            return
        if rest == vertex.name or rest.startswith("sha256:"):
            return
        if rest == "CACHED":
            vertex.cached = vertex.done = True
        elif match := _DONE.match(rest):
            vertex.seconds, vertex.done = float(match["seconds"]), True
        elif rest.startswith("ERROR: "):
            vertex.error = rest.removeprefix("ERROR: ")
        elif match := _OUTPUT.match(rest):
            vertex.output.append(match["text"])

    def _json(self, status: Mapping[str, object]) -> None:
        for item in status.get("vertexes") or []:  # type: ignore[attr-defined]
            key, name = str(item.get("digest")), str(item.get("name") or "")
            vertex = self._vertices.get(key) or self._vertex(key, name, render=True)
            started, completed = _timestamp(item.get("started")), _timestamp(item.get("completed"))
            if started is not None and vertex.started is None:
                vertex.started = started
                if not item.get("cached"):
                    self._started(vertex)
            if item.get("cached") and not vertex.cached:
                vertex.cached = True
                self.lines.append(f"#{vertex.number} CACHED")
            if item.get("error") and vertex.error is None:
                vertex.error = str(item["error"])
                self.lines.append(f"#{vertex.number} ERROR: {vertex.error}")
            if started is not None and completed is not None and not vertex.done:
                vertex.done, vertex.seconds = True, round(completed - started, 3)
                if not vertex.cached and not vertex.error:
                    self.lines.append(f"#{vertex.number} DONE {vertex.seconds:.1f}s")
        for entry in status.get("logs") or []:  # type: ignore[attr-defined]
            found = self._vertices.get(str(entry.get("vertex")))
            if found is None:
                continue
            stream = entry.get("stream")
            data = base64.b64decode(str(entry.get("data") or "")).decode("utf-8", "replace")
            text = found.partial.pop(stream, "") + data.replace("\r\n", "\n")
            *complete, found.partial[stream] = text.split("\n")
            for piece in complete:
                self._output(found, piece)

    def _output(self, vertex: _Vertex, text: str) -> None:
        vertex.output.append(text)
        self.lines.append(f"#{vertex.number} {text}")

    def finish(self) -> None:
        """Keep what the steps printed without a final newline."""
        for vertex in self._vertices.values():
            for stream in list(vertex.partial):
                if vertex.partial[stream]:
                    self._output(vertex, vertex.partial.pop(stream))

    # ---------------------------------------------------------------- steps

    def _vertex(self, key: str, name: str, *, render: bool = False) -> _Vertex:
        vertex = self._vertices[key] = _Vertex(len(self._vertices) + 1, name)
        if render:
            self.lines.append(f"#{vertex.number} {name}")
        if name.startswith(_METADATA) and self.dockerfile is not None:
            vertex.instruction = self.dockerfile.from_of(name.removeprefix(_METADATA))
        match = _STEP_NAME.match(name)
        if match:
            vertex.position = int(match["position"])
            if self.dockerfile is not None:
                vertex.instruction = self.dockerfile.instruction_of_progress(
                    match["stage"], vertex.position, match["text"]
                )
        return vertex

    def _started(self, vertex: _Vertex) -> None:
        """Tell `on_step` of a step that runs, as the classic builder names it (`Step 4/8 : ...`)."""
        match = _STEP_NAME.match(vertex.name)
        if self.on_step is None or match is None:
            return
        if vertex.instruction is None or self.dockerfile is None:
            self.on_step(match["text"])
        else:
            total = len(self.dockerfile.instructions)
            self.on_step(f"Step {vertex.instruction.index}/{total} : {vertex.instruction.text}")

    @property
    def steps(self) -> list[BuildStep]:
        """The Dockerfile instructions that BuildKit ran as steps (FROM, RUN, COPY, ADD,
        WORKDIR), in Dockerfile order; the others only set the image's config."""
        total = len(self.dockerfile.instructions) if self.dockerfile else None
        steps = []
        for vertex in self._vertices.values():
            match = _STEP_NAME.match(vertex.name)
            if not match or not vertex.done or vertex.error is not None:
                continue
            instruction = vertex.instruction
            steps.append(
                BuildStep(
                    index=instruction.index if instruction else vertex.position,
                    total=total if instruction else int(match["total"]),
                    instruction=instruction.text if instruction else match["text"],
                    # FROM builds nothing: a base image found locally counts as cached.
                    cached=vertex.cached or match["text"].upper().startswith("FROM "),
                    seconds=vertex.seconds or 0.0,
                    image_id=None,
                )
            )
        return sorted(steps, key=lambda step: step.index)

    @property
    def failed(self) -> _Vertex | None:
        return next((vertex for vertex in self._vertices.values() if vertex.error is not None), None)

    @property
    def exit_code(self) -> int | None:
        failed = self.failed
        found = _EXIT_CODE.search(failed.error or "") if failed else None
        return int(found["code"]) if found else None

    @property
    def parse_error(self) -> tuple[int, str] | None:
        """The line and complaint of the engine's Dockerfile frontend, when it could not read the
        Dockerfile (`dockerfile parse error line 3: Unknown flag: link`)."""
        for line in reversed(self.lines):
            if found := _PARSE_ERROR.search(line):
                return int(found["line"]), found["what"]
        return None

    @property
    def message(self) -> str:
        """What went wrong: the failing step's error, the frontend's complaint, or else the CLI's
        last words."""
        if self.failed is not None and self.failed.error:
            return self.failed.error
        if self.parse_error is not None:
            line, what = self.parse_error
            return f"the engine's Dockerfile frontend cannot read line {line}: {what}"
        plain = [line for line in self.lines if line.strip() and not line.startswith(("#", "------", " > "))]
        return plain[-1] if plain else "the docker CLI reported no image"

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
