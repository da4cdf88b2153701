"""Parsing the classic builder's stream: steps, cache hits, the failing step and the last good layer."""

from __future__ import annotations

from itertools import count

from pytest_dockerimg.buildlog import BuildLog

CACHED_THEN_FAILING = [
    {"stream": "Step 1/4 : FROM debian:bookworm"},
    {"stream": "\n"},
    {"stream": " ---> f5bb94a8fac4\n"},
    {"stream": "Step 2/4 : RUN apt-get update"},
    {"stream": "\n ---> Using cache\n ---> e98d2c152d1d\n"},
    {"stream": "Step 3/4 : RUN apt-get install -y ngin\n"},
    {"stream": " ---> Running in 2f16c5f11250\n"},
    {"stream": "Reading package lists...\nE: Unable to locate"},
    {"stream": " package ngin\n"},
    {
        "errorDetail": {
            "code": 100,
            "message": "The command '/bin/sh -c apt-get install -y ngin' returned a non-zero code: 100",
        },
        "error": "The command '/bin/sh -c apt-get install -y ngin' returned a non-zero code: 100",
    },
]


def fake_clock():
    ticks = count()
    return lambda: float(next(ticks))


def test_a_failing_run_names_step_exit_code_and_last_good_layer():
    log = BuildLog(clock=fake_clock())
    for chunk in CACHED_THEN_FAILING:
        log.feed(chunk)
    log.finish()
    assert log.error_code == 100
    assert log.failed_step is not None
    assert log.failed_step.instruction == "RUN apt-get install -y ngin"
    assert log.last_image_id == "e98d2c152d1d"
    assert "E: Unable to locate package ngin" in log.lines  # a line split across two chunks
    assert [(s.index, s.cached) for s in log.steps] == [(1, True), (2, True)]


def test_steps_record_cache_hits_layers_and_time():
    log = BuildLog(clock=fake_clock())
    for chunk in [
        {"stream": "Step 1/3 : FROM busybox\n ---> aaaaaaaaaaaa\n"},
        {"stream": "Step 2/3 : RUN echo hi\n ---> Running in cccccccccccc\nhi\n"},
        {"stream": "Removing intermediate container cccccccccccc\n ---> bbbbbbbbbbbb\n"},
        {"stream": "Step 3/3 : EXPOSE 80\n ---> Using cache\n ---> dddddddddddd\n"},
        {"aux": {"ID": "sha256:" + "d" * 64}},
        {"stream": "Successfully built dddddddddddd\n"},
    ]:
        log.feed(chunk)
    log.finish()
    assert log.error is None
    assert log.image_id == "sha256:" + "d" * 64
    assert [str(step) for step in log.steps] == [
        "Step 1/3 : FROM busybox",
        "Step 2/3 : RUN echo hi",
        "Step 3/3 : EXPOSE 80",
    ]
    assert [step.cached for step in log.steps] == [True, False, True]
    assert [step.image_id for step in log.steps] == ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "dddddddddddd"]
    assert all(step.seconds == 1.0 for step in log.steps)


def test_a_pulled_base_image_is_not_a_cache_hit():
    log = BuildLog()
    log.feed({"stream": "Step 1/1 : FROM busybox\n"})
    log.feed({"status": "Pulling from library/busybox", "id": "latest"})
    log.feed({"status": "Downloading", "progressDetail": {}, "progress": "[==>  ]", "id": "abc"})
    log.finish()
    assert log.steps[0].cached is False
    assert "latest: Pulling from library/busybox" in log.lines
    assert not any("Downloading" in line for line in log.lines)


def test_on_step_is_told_each_step_as_it_starts():
    seen: list[str] = []
    log = BuildLog(on_step=seen.append)
    log.feed({"stream": "Step 1/2 : FROM busybox\n ---> aaaaaaaaaaaa\nStep 2/2 : RUN sleep 1\n"})
    assert seen == ["Step 1/2 : FROM busybox", "Step 2/2 : RUN sleep 1"]
    assert log.current_step == "Step 2/2 : RUN sleep 1"


def test_an_error_without_detail_still_fails():
    log = BuildLog()
    log.feed({"error": "dockerfile parse error line 3: unknown instruction: ECHO"})
    assert log.error == "dockerfile parse error line 3: unknown instruction: ECHO"
    assert log.error_code is None
    assert log.failed_step is None


def test_label_steps_appended_by_the_engine_are_numbered_out_of_the_dockerfile():
    seen: list[str] = []
    log = BuildLog(on_step=seen.append, appended=1)
    for chunk in [
        {"stream": "Step 1/3 : FROM busybox\n ---> aaaaaaaaaaaa\n"},
        {"stream": "Step 2/3 : RUN apt-get install -y ngin\n ---> Running in cccccccccccc\n"},
        {
            "stream": "Step 3/3 : LABEL pytest-dockerimg=session=x\n ---> Running in dddddddddddd\n ---> eeeeeeeeeeee\n"
        },
    ]:
        log.feed(chunk)
    log.finish()
    assert [str(step) for step in log.steps] == [
        "Step 1/2 : FROM busybox",
        "Step 2/2 : RUN apt-get install -y ngin",
    ]
    assert seen == ["Step 1/2 : FROM busybox", "Step 2/2 : RUN apt-get install -y ngin"]
    assert "Build label : LABEL pytest-dockerimg=session=x" in log.lines


def test_terminal_colours_are_stripped_before_lines_are_read():
    log = BuildLog()
    log.feed({"stream": "\x1b[91mE\x1b[0m\x1b[91m: \x1b[0m\x1b[91mUnable to locate package ngin\n\x1b[0m"})
    log.feed({"stream": "\x1b[0mRemoving intermediate container cccccccccccc\n"})
    log.finish()
    assert log.lines == ["E: Unable to locate package ngin", "Removing intermediate container cccccccccccc"]


def test_fresh_layers_are_the_ones_this_build_made():
    log = BuildLog()
    log.feed(
        {
            "stream": "Step 1/3 : FROM busybox\n ---> aaaaaaaaaaaa\nStep 2/3 : RUN a\n ---> Using cache\n ---> bbbbbbbbbbbb\n"
        }
    )
    log.feed({"stream": "Step 3/3 : RUN b\n ---> Running in cccccccccccc\n ---> dddddddddddd\n"})
    log.finish()
    assert log.fresh_layers == ["dddddddddddd"]


def test_podman_build_output_is_parsed_like_dockers():
    """podman's compatible API says `STEP 2/3: ...`, `--> Using cache <id>`, `--> <id>` and ends a
    failed RUN with `exit status N`: the same steps, cache hits, layers and exit code come out."""
    log = BuildLog()
    for text in [
        "STEP 1/3: FROM busybox:latest\n",
        "STEP 2/3: RUN echo hi\n",
        "--> Using cache f8bf31a32554f27662e4392674ae4f1c1d523462035f938a62777b84ef7ca2d9\n",
        "--> f8bf31a32554\n",
        "STEP 3/3: RUN exit 7\n",
    ]:
        log.feed({"stream": text})
    log.feed({"error": 'building at STEP "RUN exit 7": while running runtime: exit status 7\n'})

    assert [(str(step), step.cached) for step in log.steps] == [
        ("Step 1/3 : FROM busybox:latest", True),
        ("Step 2/3 : RUN echo hi", True),
    ]
    assert log.last_image_id == "f8bf31a32554"
    assert log.failed_step is not None
    assert log.failed_step.instruction == "RUN exit 7"
    assert log.error_code == 7


def test_podmans_multi_stage_steps_are_numbered_on_across_stages():
    """podman numbers steps per stage (`[3/3] STEP 1/3: ...`) and skips a stage the target does
    not need: the steps are numbered on (the total, known in the last stage, given to all), and the label the
    build appends is left out as with Docker."""
    log = BuildLog(appended=1)
    for text in [
        "[1/3] STEP 1/2: FROM busybox:latest AS base\n",
        "[1/3] STEP 2/2: RUN echo base\n",
        "--> 02e8af350dae\n",
        "[3/3] STEP 1/3: FROM 02e8af350dae39b934859b069648c38e5e46b0a75d5d090f4b66e4bbfda8f36b AS release\n",
        "[3/3] STEP 2/3: ENV STAGE=release\n",
        "--> 00c8a9169758\n",
        '[3/3] STEP 3/3: LABEL "team"="web"\n',
        "[3/3] COMMIT\n",
        "--> a522de3c7596\n",
        "Successfully built a522de3c7596\n",
    ]:
        log.feed({"stream": text})
    log.finish()

    assert [str(step) for step in log.steps] == [
        "Step 1/4 : FROM busybox:latest AS base",
        "Step 2/4 : RUN echo base",
        "Step 3/4 : FROM 02e8af350dae39b934859b069648c38e5e46b0a75d5d090f4b66e4bbfda8f36b AS release",
        "Step 4/4 : ENV STAGE=release",
    ]
    assert [step.image_id for step in log.steps][1:] == ["02e8af350dae", None, "00c8a9169758"]
    assert log.image_id == "a522de3c7596"
