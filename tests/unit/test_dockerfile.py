"""The Dockerfile as the builders read it: instructions numbered as `docker build` counts them,
BuildKit's progress names mapped back to them, the cut before a failing step, and the scanner
that names each piece of BuildKit-only syntax with its line."""

from __future__ import annotations

import pytest

from pytest_dockerimg.dockerfile import Dockerfile, scan_buildkit_only

MULTISTAGE = """\
ARG BASE=busybox:latest
FROM $BASE AS builder
ENV GREETING=hi
WORKDIR /src
RUN echo "$GREETING" > /src/greeting && \\
    echo more >> /src/greeting

FROM busybox:latest
COPY --from=builder /src /out
RUN false
"""


def test_instructions_are_numbered_over_the_whole_file_with_their_lines():
    dockerfile = Dockerfile(MULTISTAGE)
    assert [(i.index, i.line, i.keyword) for i in dockerfile.instructions] == [
        (1, 1, "ARG"),
        (2, 2, "FROM"),
        (3, 3, "ENV"),
        (4, 4, "WORKDIR"),
        (5, 5, "RUN"),
        (6, 8, "FROM"),
        (7, 9, "COPY"),
        (8, 10, "RUN"),
    ]
    assert (
        dockerfile.instructions[4].text
        == 'RUN echo "$GREETING" > /src/greeting &&     echo more >> /src/greeting'
    )
    assert [(stage.name, len(stage.instructions)) for stage in dockerfile.stages] == [
        ("builder", 4),
        (None, 3),
    ]


def test_buildkit_progress_names_map_back_to_instructions():
    dockerfile = Dockerfile(MULTISTAGE)
    shown = 'RUN echo "hi" > /src/greeting &&     echo more >> /src/greeting'  # variables expanded
    assert dockerfile.instruction_of_progress("builder", 3, shown).index == 5
    assert dockerfile.instruction_of_progress("stage-1", 3, "RUN false").index == 8
    assert dockerfile.instruction_of_progress(None, 1, "FROM docker.io/library/busybox:latest").index == 6
    assert dockerfile.from_of("docker.io/library/busybox:latest").index == 6


def test_the_cut_before_a_step_ends_with_its_stage():
    dockerfile = Dockerfile(MULTISTAGE)
    cut = Dockerfile(dockerfile.cut_before(dockerfile.instructions[-1]))
    assert [i.keyword for i in cut.instructions] == ["ARG", "FROM", "ENV", "WORKDIR", "RUN", "FROM", "COPY"]
    assert cut.stages[-1].instructions[0].text == "FROM busybox:latest"


@pytest.mark.parametrize(
    ("dockerfile", "line", "feature"),
    [
        ("FROM busybox\nRUN --mount=type=cache,target=/x true\n", 2, "`RUN --mount`"),
        ("FROM busybox\nRUN --network=none true\n", 2, "`RUN --network`"),
        ("FROM busybox\nCOPY --chmod=0755 a /a\n", 2, "`COPY --chmod`"),
        ("FROM busybox\nCOPY --link a /a\n", 2, "`COPY --link`"),
        ("FROM busybox\nADD --checksum=sha256:00 http://x/a /a\n", 2, "`ADD --checksum`"),
        ("FROM busybox\nCOPY --exclude=*.log . /app\n", 2, "`COPY --exclude`"),
        ("FROM busybox\nCOPY --parents ./a/b /app/\n", 2, "`COPY --parents`"),
        ("FROM busybox\n\nRUN <<EOF\necho hi\nEOF\n", 3, "a heredoc (`RUN <<EOF`)"),
        ("FROM busybox\nCOPY <<-END /a\n\thi\n\tEND\n", 2, "a heredoc (`COPY <<END`)"),
        ("FROM --platform=linux/amd64 busybox\n", 1, "`FROM --platform`"),
        ("FROM busybox\nARG TARGETARCH\nRUN echo $TARGETARCH\n", 2, "the platform argument TARGETARCH"),
        ("FROM busybox\nRUN echo ${TARGETOS} \\\n  ${TARGETPLATFORM}\n", 2, "the platform argument TARGETOS"),
        ("# syntax=docker/dockerfile:1\nFROM busybox\n", 1, "`# syntax=docker/dockerfile:1`"),
    ],
)
def test_each_buildkit_only_feature_is_named_with_its_line(dockerfile, line, feature):
    first = scan_buildkit_only(dockerfile)[0]
    assert (first.line, first.feature) == (line, feature)
    assert str(first).startswith(f"line {line}: {feature} (")


@pytest.mark.parametrize(
    "dockerfile",
    [
        "FROM busybox\nRUN echo '<<not a heredoc' && true\n",
        "FROM busybox\n# syntax=docker/dockerfile:1 is only a directive at the top\n",
        "FROM busybox\nRUN echo --mount=not-a-flag\n",
        "FROM busybox\nCOPY --from=builder /a /a\n",
    ],
)
def test_what_the_classic_builder_builds_is_not_flagged(dockerfile):
    assert scan_buildkit_only(dockerfile) == []
