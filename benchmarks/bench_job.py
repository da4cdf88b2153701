"""Benchmark: the 10-container job through the plugin (a pytest run, sequential and with `-n 2`)
against the raw docker-py floor, alternated in one run; medians of the rounds, and where the time
goes per phase.

The job: build a busybox httpd image, then 10 times: run a container with port 80 published on a
random loopback port, wait until `GET /` answers 200, remove the container; remove the image at
the end. The floor is the plainest docker-py program that does it (issue 12):

    build; for each of 10: containers.run(detach=True, ports={"80/tcp": ("127.0.0.1", None)}),
    reload(), GET every 20 ms until 200, remove(force=True); rmi at the end.

Both run as fresh processes (interpreter start and imports count), timed from the parent. One
extra run of each counts the engine API round trips (docker-py's `APIClient.send` wrapped).

    python benchmarks/bench_job.py [--rounds 5] [--containers 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

DOCKERFILE = """\
FROM busybox:latest
RUN mkdir -p /www && echo 'bench job' > /www/index.html
EXPOSE 80
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
"""

# Counting mode (BENCH_COUNT set): every engine API call, by method and path shape.
COUNTER = """
import atexit, json, os, re, time

def install_counter(out_path, stamps):
    import docker.api.client

    calls = []
    send = docker.api.client.APIClient.send

    def counted(self, request, **kwargs):
        path = re.sub(r"/v[0-9.]+/", "/", request.path_url.split("?")[0])
        path = re.sub(r"[0-9a-f]{12,}|pytest[^/]*|sha256:[0-9a-f]+", "ID", path)
        calls.append((time.time(), f"{request.method} {path}"))
        return send(self, request, **kwargs)

    docker.api.client.APIClient.send = counted
    atexit.register(lambda: open(out_path, "a").write(json.dumps({"calls": calls, **stamps}) + "\\n"))
"""

FLOOR = (
    COUNTER
    + """
import sys, time, json, os
stamps = {"started": time.time()}
if os.environ.get("BENCH_COUNT"):
    install_counter(os.environ["BENCH_COUNT"], stamps)
import docker, requests
stamps["imported"] = time.time()
client = docker.from_env()
image, _ = client.images.build(path=sys.argv[1], rm=True)
stamps["built"] = time.time()
session = requests.Session()
session.trust_env = False
phases = {"create+start": 0.0, "reload": 0.0, "ready": 0.0, "teardown": 0.0}
for _ in range(int(sys.argv[2])):
    t0 = time.time()
    container = client.containers.run(image.id, detach=True, ports={"80/tcp": ("127.0.0.1", None)})
    t1 = time.time()
    container.reload()
    t2 = time.time()
    port = container.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
    while True:
        try:
            if session.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.02)
    t3 = time.time()
    container.remove(force=True)
    t4 = time.time()
    for name, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
        phases[name] += seconds
stamps["last"] = time.time()
# rmi, keeping the parent layers (the build cache), as the plugin does: a plain rmi would make
# the floor's next build a cold one, a handicap the plugin does not have.
client.images.remove(image.id, force=True, noprune=True)
stamps["ended"] = time.time()
print(json.dumps({**stamps, "phases": phases}))
"""
)

TEST_FILE = """
import pytest
import requests
from pytest_dockerimg import wait

pytestmark = [
    pytest.mark.docker_image("web"),
    pytest.mark.docker_container(ports=["80"], wait=wait.http(80)),
]


@pytest.mark.parametrize("n", range({containers}))
def test_job(docker_container, n):
    assert requests.get(docker_container.url(80), timeout=5).status_code == 200
"""

# Time stamps from inside the pytest processes (controller and workers), and the plugin's stats.
CONFTEST = (
    COUNTER
    + """
import json, os, time
import pytest

STAMPS = {"pid": os.getpid(), "configured": time.time()}
if os.environ.get("BENCH_COUNT"):
    install_counter(os.environ["BENCH_COUNT"], STAMPS)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    STAMPS.setdefault("first", time.time())


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    STAMPS["last"] = time.time()


def pytest_unconfigure(config):
    from pytest_dockerimg.plugin import SESSION_KEY

    docker = config.stash.get(SESSION_KEY, None)
    if docker is not None and not hasattr(config, "workerinput"):
        STAMPS["stats"] = docker.stats.to_dict()
    with open(os.environ["BENCH_STAMPS"], "a") as out:
        out.write(json.dumps(STAMPS) + "\\n")
"""
)


def write_project(root: Path, containers: int) -> None:
    (root / "web").mkdir()
    (root / "web" / "Dockerfile").write_text(DOCKERFILE)
    (root / "test_job.py").write_text(TEST_FILE.replace("{containers}", str(containers)))
    (root / "conftest.py").write_text(CONFTEST)
    (root / "floor.py").write_text(FLOOR)


def run_floor(root: Path, containers: int, env: dict[str, str]) -> dict:
    started = time.time()
    out = subprocess.run(
        [sys.executable, str(root / "floor.py"), str(root / "web"), str(containers)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    ended = time.time()
    data = json.loads(out.stdout)
    data.update(launched=started, exited=ended)
    return data


def run_plugin(root: Path, workers: int, env: dict[str, str]) -> dict:
    stamps = root / "stamps.jsonl"
    stamps.unlink(missing_ok=True)
    extra = ["-n", str(workers)] if workers else ["-p", "no:xdist"]
    started = time.time()
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, "test_job.py"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**env, "BENCH_STAMPS": str(stamps)},
    )
    ended = time.time()
    if out.returncode != 0:
        raise SystemExit(f"the plugin's run failed:\n{out.stdout}\n{out.stderr}")
    processes = [json.loads(line) for line in stamps.read_text().splitlines()]
    runners = [p for p in processes if "first" in p]
    stats = next(p["stats"] for p in processes if "stats" in p)
    return {
        "launched": started,
        "exited": ended,
        "first": min(p["first"] for p in runners),
        "last": max(p["last"] for p in runners),
        "stats": stats,
    }


def count_calls(path: Path) -> tuple[Counter[str], Counter[str]]:
    """Engine API calls: those on one container (create, start, inspect, remove...) and the
    others (version, build, listings, image removal...)."""
    per_container, others = Counter[str](), Counter[str]()
    for line in path.read_text().splitlines():
        for _, call in json.loads(line)["calls"]:
            on_one = call.startswith(("POST /containers/", "GET /containers/ID", "DELETE /containers/"))
            (per_container if on_one else others)[call] += 1
    return per_container, others


def metrics(result: dict, n: int) -> dict[str, float]:
    """Milliseconds per phase of one run (per container where the name says so)."""
    if "stats" not in result:  # the floor
        phases = result["phases"]
        return {
            "launch to the job (interpreter, imports)": result["imported"] - result["launched"],
            "build": result["built"] - result["imported"],
            "containers, build excluded": result["last"] - result["built"],
            "  create+start, per container": (phases["create+start"] + phases["reload"]) / n,
            "  ready, per container": phases["ready"] / n,
            "  teardown in the loop/test, per container": phases["teardown"] / n,
            "end: last container to exit": result["exited"] - result["last"],
            "total wall time": result["exited"] - result["launched"],
        }
    stats = result["stats"]
    return {
        "launch to the job (interpreter, imports)": result["first"] - result["launched"],
        "build": stats["build_seconds"],
        "containers, build excluded": result["last"] - result["first"] - stats["build_seconds"],
        "  create+start, per container": stats["start_seconds"] / n,
        "  ready, per container": stats["ready_seconds"] / n,
        "  teardown in the loop/test, per container": float("nan"),
        "end: last container to exit": result["exited"] - result["last"],
        "total wall time": result["exited"] - result["launched"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--containers", type=int, default=10)
    args = parser.parse_args()
    n = args.containers
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BENCH_", "PYTEST_"))}
    variants: dict[str, int | None] = {"floor": None, "plugin": 0, "plugin -n 2": 2}
    with tempfile.TemporaryDirectory(prefix="bench-job-") as tmp:
        root = Path(tmp)
        write_project(root, n)
        run_floor(root, n, env)  # warm-up: the build cache, bytecode, page cache
        run_plugin(root, 0, env)
        results: dict[str, list[dict]] = {name: [] for name in variants}
        for round_ in range(args.rounds):
            names = list(variants) if round_ % 2 == 0 else list(reversed(variants))
            for name in names:
                workers = variants[name]
                result = run_floor(root, n, env) if workers is None else run_plugin(root, workers, env)
                results[name].append(result)
        calls = {}
        for name, workers in variants.items():
            counts = root / f"calls-{workers}.jsonl"
            counted_env = {**env, "BENCH_COUNT": str(counts)}
            if workers is None:
                run_floor(root, n, counted_env)
            else:
                run_plugin(root, workers, counted_env)
            calls[name] = count_calls(counts)

    table = {name: [metrics(result, n) for result in results[name]] for name in variants}
    print(f"{n} containers, {args.rounds} rounds alternated; medians, in ms")
    header = f"{'phase':<44}" + "".join(f"{name:>14}" for name in variants)
    print(header)
    print("-" * len(header))
    for phase in table["floor"][0]:
        cells = [statistics.median(m[phase] for m in table[name]) * 1000 for name in variants]
        print(f"{phase:<44}" + "".join(f"{cell:>14.1f}" for cell in cells))
    floor_walls = [m["total wall time"] for m in table["floor"]]
    ratios = [
        statistics.median(m["total wall time"] / f for m, f in zip(table[name], floor_walls))
        for name in variants
    ]
    print(f"{'ratio to the floor (paired rounds, median)':<44}" + "".join(f"{r:>14.2f}" for r in ratios))
    cells = [sum(calls[name][0].values()) / n for name in variants]
    print(f"{'API calls per container':<44}" + "".join(f"{cell:>14.1f}" for cell in cells))
    cells = [sum(calls[name][1].values()) for name in variants]
    print(f"{'other API calls (start, build, end)':<44}" + "".join(f"{cell:>14.0f}" for cell in cells))
    print()
    for name in variants:
        per_container, others = calls[name]
        listed = ", ".join(f"{call} {count / n:g}" for call, count in per_container.most_common())
        print(f"{name}: per container {listed}")
        print(
            f"{' ' * len(name)}  others: "
            + ", ".join(f"{call} {count}" for call, count in others.most_common())
        )


if __name__ == "__main__":
    main()
