"""Benchmark: what the plugin costs a suite that uses no Docker. A generated suite of plain tests
runs with the plugin and with `-p no:dockerimg`, in pairs whose order alternates; prints the
median wall-time ratio, the peak memory (max RSS) of both, and whether the plugin imported
docker or connected to the engine.

    python benchmarks/bench_no_docker.py [--tests 1000] [--rounds 10] [--collect-only]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEST_FILE = """\
import pytest


@pytest.mark.parametrize("n", range({count}))
def test_param(n):
    assert n >= 0


{functions}
"""

# Imported by the suite's conftest at the end of the session: which heavy modules were loaded.
CONFTEST = """\
import sys


def pytest_unconfigure(config):
    heavy = sorted(name for name in ("docker", "requests", "urllib3", "tenacity") if name in sys.modules)
    with open({report!r}, "w") as out:
        out.write(",".join(heavy))
"""


def write_suite(root: Path, tests: int, files: int = 10) -> None:
    per_file = tests // files
    for index in range(files):
        plain = per_file // 2
        functions = "\n\n".join(f"def test_plain_{n}():\n    assert {n} + 1 > {n}\n" for n in range(plain))
        (root / f"test_generated_{index}.py").write_text(
            TEST_FILE.format(count=per_file - plain, functions=functions)
        )
    (root / "conftest.py").write_text(CONFTEST.format(report=str(root / "heavy.txt")))


def run(root: Path, extra: list[str]) -> tuple[float, int]:
    """One pytest run: wall seconds and peak RSS (KiB) of that process alone."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(root)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed ({process.returncode}): {process.stderr.read().decode()}"
        )
    process.stderr.close()
    return seconds, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10, help="paired runs (at least 10)")
    parser.add_argument("--collect-only", action="store_true", help="time pytest --collect-only")
    args = parser.parse_args()
    extra = ["--collect-only"] if args.collect_only else []
    with tempfile.TemporaryDirectory(prefix="bench-no-docker-") as tmp:
        root = Path(tmp)
        write_suite(root, args.tests)
        run(root, extra)  # warm-up: bytecode caches, page cache
        run(root, [*extra, "-p", "no:dockerimg"])
        ratios, with_plugin, without, rss_with, rss_without = [], [], [], [], []
        for round_ in range(args.rounds):
            order = [True, False] if round_ % 2 == 0 else [False, True]
            times = {}
            for plugin in order:
                seconds, rss = run(root, extra if plugin else [*extra, "-p", "no:dockerimg"])
                times[plugin] = seconds
                (rss_with if plugin else rss_without).append(rss)
            with_plugin.append(times[True])
            without.append(times[False])
            ratios.append(times[True] / times[False])
        run(root, extra)
        heavy = (root / "heavy.txt").read_text() or "none"
    mode = "--collect-only, " if args.collect_only else ""
    print(f"{args.tests} plain tests, {mode}{args.rounds} paired runs (order alternating)")
    print(
        f"with the plugin      median {statistics.median(with_plugin):.3f} s   min {min(with_plugin):.3f} s"
    )
    print(f"-p no:dockerimg      median {statistics.median(without):.3f} s   min {min(without):.3f} s")
    print(
        f"ratio (paired)       median {statistics.median(ratios):.3f}   min {min(ratios):.3f}   "
        f"max {max(ratios):.3f}"
    )
    print(
        f"peak RSS             with {statistics.median(rss_with) / 1024:.1f} MiB, without "
        f"{statistics.median(rss_without) / 1024:.1f} MiB "
        f"(+{(statistics.median(rss_with) - statistics.median(rss_without)) / 1024:.1f} MiB)"
    )
    print(f"heavy modules imported by the run with the plugin: {heavy}")


if __name__ == "__main__":
    main()
