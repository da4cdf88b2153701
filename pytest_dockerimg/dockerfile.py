"""The Dockerfile as the builders need it: its instructions numbered as `docker build` counts
them (with the physical line each starts on), its stages, the text cut just before an
instruction (the debug image of a failed BuildKit build), and a scanner for the syntax that only
BuildKit builds (which the classic builder rejects, or silently builds wrong).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

_DIRECTIVE = re.compile(r"^#\s*(?P<key>[A-Za-z]+)\s*=\s*(?P<value>\S+)\s*$")
_KEYWORD = re.compile(r"^\s*(?P<keyword>[A-Za-z]+)(?:\s+|$)")
_HEREDOC = re.compile(r"<<(?P<dash>-?)(?P<quote>[\"']?)(?P<word>[A-Za-z_][A-Za-z0-9_]*)(?P=quote)")
_STAGE_NAME = re.compile(r"\s+AS\s+(?P<name>\S+)\s*$", re.IGNORECASE)
_FLAG = re.compile(r"--(?P<name>[a-z-]+)(?:=(?P<value>\S*))?")
# Instructions that BuildKit runs as build steps of their own (its `[stage i/n]` progress lines).
VERTEX_KEYWORDS = frozenset({"FROM", "RUN", "COPY", "ADD", "WORKDIR"})
# The platform arguments that BuildKit defines and the classic builder leaves empty.
PLATFORM_ARGS = (
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
)
_PLATFORM_ARG = re.compile(r"\$\{?(?P<name>" + "|".join(PLATFORM_ARGS) + r")\b")
_REJECTED = "the classic builder rejects it"
_IGNORED = "the classic builder ignores it and builds something else"
_BUILDKIT_FLAGS = {
    "RUN": {"mount": _REJECTED, "network": _REJECTED, "security": _REJECTED},
    "COPY": {
        "chmod": _REJECTED,
        "link": _IGNORED,
        "checksum": _IGNORED,
        "exclude": _IGNORED,
        "parents": _IGNORED,
    },
    "ADD": {
        "chmod": _REJECTED,
        "link": _IGNORED,
        "checksum": _IGNORED,
        "exclude": _IGNORED,
        "parents": _IGNORED,
        "keep-git-dir": _REJECTED,
    },
    "FROM": {"platform": "the classic builder builds for the engine's own platform only"},
}


@dataclass(frozen=True)
class Instruction:
    """One instruction: `index` counts from 1 over the whole file, as `Step 5/8` does."""

    index: int
    line: int
    end_line: int
    keyword: str
    text: str
    stage: int

    @property
    def flags(self) -> dict[str, str]:
        """The `--name=value` flags between the keyword and the arguments."""
        flags = {}
        rest = self.text[len(self.keyword) :].split()
        for word in rest:
            match = _FLAG.fullmatch(word)
            if not match:
                break
            flags[match["name"]] = match["value"] or ""
        return flags


@dataclass(frozen=True)
class Stage:
    """A `FROM` and the instructions after it; `name` is its `AS` name, lowercase, or None."""

    name: str | None
    instructions: tuple[Instruction, ...]


@dataclass(frozen=True)
class Finding:
    """A piece of BuildKit-only syntax at a line of the Dockerfile."""

    line: int
    feature: str
    why: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.feature} ({self.why})"


class Dockerfile:
    """A parsed Dockerfile. Heredoc bodies belong to their instruction, as BuildKit reads them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines()
        self.directives: dict[str, tuple[int, str]] = {}
        self.instructions: list[Instruction] = []
        self.heredocs: list[tuple[int, str]] = []
        self._parse()

    @property
    def escape(self) -> str:
        return self.directives.get("escape", (0, "\\"))[1]

    def _parse(self) -> None:
        number = 0
        for number, raw in enumerate(self.lines, start=1):  # parser directives: only at the very top
            match = _DIRECTIVE.match(raw.strip())
            if not match or match["key"].lower() in self.directives:
                break
            self.directives[match["key"].lower()] = (number, match["value"])
        lines = self.lines
        position = 0
        stage = -1
        while position < len(lines):
            raw = lines[position]
            position += 1
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            start = position
            text = raw.strip()
            while text.endswith(self.escape) and position < len(lines):
                text = text[: -len(self.escape)]
                while position < len(lines) and (
                    not lines[position].strip() or lines[position].lstrip().startswith("#")
                ):
                    position += 1  # blank lines and comments inside a continuation are dropped
                if position < len(lines):
                    text += lines[position].rstrip()
                    position += 1
            keyword_match = _KEYWORD.match(text)
            keyword = keyword_match["keyword"].upper() if keyword_match else text.split()[0].upper()
            if keyword in ("RUN", "COPY", "ADD"):
                for heredoc in _HEREDOC.finditer(text):
                    closing = next(
                        (
                            index
                            for index in range(position, len(lines))
                            if (lines[index].lstrip("\t") if heredoc["dash"] else lines[index]).rstrip()
                            == heredoc["word"]
                        ),
                        None,
                    )
                    if closing is not None:
                        self.heredocs.append((start, heredoc["word"]))
                        position = closing + 1
            if keyword == "FROM":
                stage += 1
            self.instructions.append(
                Instruction(len(self.instructions) + 1, start, position, keyword, text, max(stage, 0))
            )

    @cached_property
    def stages(self) -> list[Stage]:
        stages: list[Stage] = []
        for instruction in self.instructions:
            if instruction.keyword == "FROM":
                named = _STAGE_NAME.search(instruction.text)
                members = tuple(
                    i
                    for i in self.instructions
                    if i.stage == instruction.stage and i.index >= instruction.index
                )
                stages.append(Stage(named["name"].lower() if named else None, members))
        return stages

    def stage_of_progress(self, name: str | None) -> Stage | None:
        """The stage that BuildKit names `name` in its progress (`builder`, `stage-1`, or no name
        when the Dockerfile has one unnamed stage)."""
        stages = self.stages
        if not stages:
            return None
        if name is None:
            return stages[-1]
        for stage in stages:
            if stage.name == name.lower():
                return stage
        if name.startswith("stage-") and name[6:].isdigit() and int(name[6:]) < len(stages):
            return stages[int(name[6:])]
        return None

    def instruction_of_progress(self, stage_name: str | None, position: int, text: str) -> Instruction | None:
        """The instruction behind BuildKit's progress line `[stage position/total] text`: the
        `position`-th build step of the stage when its keyword agrees, else the one whose text
        matches (BuildKit shows values of variables in place of `$NAME`)."""
        stage = self.stage_of_progress(stage_name)
        if stage is None:
            return None
        keyword = text.split(maxsplit=1)[0].upper() if text.strip() else ""
        steps = [i for i in stage.instructions if i.keyword in VERTEX_KEYWORDS]
        if 0 < position <= len(steps) and steps[position - 1].keyword == keyword:
            return steps[position - 1]
        wanted = " ".join(text.split())
        for instruction in stage.instructions:
            shown = " ".join(instruction.text.split())
            pattern = re.escape(shown)
            pattern = re.sub(r"\\\$(?:\\\{)?[A-Za-z_][A-Za-z0-9_]*(?:\\\})?", ".*", pattern)
            if instruction.keyword == keyword and (
                shown == wanted or re.fullmatch(pattern, wanted, re.IGNORECASE)
            ):
                return instruction
        return None

    def from_of(self, reference: str) -> Instruction | None:
        """The first `FROM` of `reference` (as BuildKit names it: `docker.io/library/busybox:latest`)."""
        short = reference.removeprefix("docker.io/").removeprefix("library/")
        for instruction in self.instructions:
            words = [word for word in instruction.text.split()[1:] if not word.startswith("--")]
            if instruction.keyword == "FROM" and words:
                image = (
                    words[0]
                    if ":" in words[0].rsplit("/", 1)[-1] or "@" in words[0]
                    else f"{words[0]}:latest"
                )
                if image in (reference, short):
                    return instruction
        return None

    def cut_before(self, instruction: Instruction) -> str:
        """The Dockerfile up to (not including) `instruction`: its last stage is the stage of
        `instruction`, built as far as the step before it."""
        return "\n".join(self.lines[: instruction.line - 1]) + "\n"


def scan_buildkit_only(text: str) -> list[Finding]:
    """Every use of syntax that only BuildKit builds, each with its line: the classic builder
    fails on some (`RUN --mount`, `COPY --chmod`) and silently builds others wrong (a heredoc
    runs nothing; `TARGETARCH` is empty; `COPY --link` is ignored)."""
    dockerfile = Dockerfile(text)
    findings = []
    if "syntax" in dockerfile.directives:
        line, value = dockerfile.directives["syntax"]
        findings.append(
            Finding(line, f"`# syntax={value}`", "BuildKit would pull that frontend image from its registry")
        )
    heredoc_lines = {line: word for line, word in dockerfile.heredocs}
    for instruction in dockerfile.instructions:
        for flag, why in _BUILDKIT_FLAGS.get(instruction.keyword, {}).items():
            if flag in instruction.flags:
                findings.append(Finding(instruction.line, f"`{instruction.keyword} --{flag}`", why))
        if instruction.line in heredoc_lines:
            findings.append(
                Finding(
                    instruction.line,
                    f"a heredoc (`{instruction.keyword} <<{heredoc_lines[instruction.line]}`)",
                    "the classic builder runs nothing for it",
                )
            )
        for offset, physical in enumerate(dockerfile.lines[instruction.line - 1 : instruction.end_line]):
            used = _PLATFORM_ARG.search(physical)
            declared = instruction.keyword == "ARG" and re.search(
                r"\b(" + "|".join(PLATFORM_ARGS) + r")\b", physical
            )
            if used or declared:
                name = used["name"] if used else declared[1] if declared else ""
                findings.append(
                    Finding(
                        instruction.line + offset,
                        f"the platform argument {name}",
                        "BuildKit sets it; the classic builder leaves it empty",
                    )
                )
                break
    return sorted(findings, key=lambda finding: finding.line)
