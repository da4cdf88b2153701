"""Pure pieces of reading container logs: engine timestamps to nanoseconds, the incremental
reader behind `wait.log` (only new lines, each once), and the cut of a long log for a report."""

from __future__ import annotations

from pytest_dockerimg.containers import _LogCursor, _nanoseconds, capped_log


def test_engine_timestamps_to_nanoseconds():
    assert _nanoseconds("1970-01-01T00:00:01.000000001Z") == 1_000_000_001
    # The engine trims trailing zeros of the fraction.
    assert _nanoseconds("1970-01-01T00:00:02.5Z") == 2_500_000_000
    assert _nanoseconds("1970-01-01T00:00:03Z") == 3_000_000_000
    assert _nanoseconds("0001-01-01T00:00:00Z") == 0


class ScriptedLogs:
    """Answers `logs(..., timestamps=True, since=...)` from a fixed list of stamped lines, as the
    engine does: every line at or after `since` (seconds, a float)."""

    def __init__(self, lines: list[tuple[str, str]]) -> None:
        self.lines = lines
        self.asked: list[float | None] = []

    def logs(self, container_id: str, **kwargs: object) -> bytes:
        since = kwargs.get("since")
        self.asked.append(since)
        return "".join(
            f"{stamp} {text}\n"
            for stamp, text in self.lines
            if since is None or _nanoseconds(stamp) >= since * 1e9
        ).encode()


def test_the_cursor_reads_each_line_once_and_skips_earlier_runs():
    api = ScriptedLogs(
        [
            ("1970-01-01T00:00:10.000000001Z", "run 1"),
            ("1970-01-01T00:00:20.000000001Z", "run 2"),
            ("1970-01-01T00:00:20.000000001Z", "same nanosecond"),
        ]
    )
    cursor = _LogCursor("1970-01-01T00:00:20Z", after_ns=_nanoseconds("1970-01-01T00:00:15Z"))

    assert cursor.read(api, "c") == "run 2\nsame nanosecond\n"
    api.lines.append(("1970-01-01T00:00:21Z", "later"))
    assert cursor.read(api, "c") == "run 2\nsame nanosecond\nlater\n"
    # The second read asked only from a millisecond before the last line seen.
    assert api.asked[0] == 15.0 - 1e-3
    assert 20.0 - 1e-3 < api.asked[1] < 20.0


def test_a_short_log_is_reported_whole():
    assert capped_log("one\ntwo\n", "see docker logs x") == "one\ntwo\n"


def test_a_long_log_is_cut_to_its_last_lines_with_how_to_see_the_rest():
    text = "".join(f"line {n}\n" for n in range(1, 1001))
    cut = capped_log(text, "all of it: docker logs web", lines=200)
    first, *rest = cut.splitlines()
    assert first == "[log cut to its last 200 lines; all of it: docker logs web]"
    assert rest[0] == "line 801"
    assert rest[-1] == "line 1000"


def test_a_log_of_long_lines_is_cut_by_size_too():
    text = "".join(f"{n:05d} " + "x" * 994 + "\n" for n in range(100))  # 100 lines of 1000 characters
    cut = capped_log(text, "hint", lines=200, chars=5_000)
    assert len(cut) < 5_200
    assert cut.splitlines()[-1].startswith("00099 ")
    assert cut.startswith("[log cut to its last 4 lines; hint]")
