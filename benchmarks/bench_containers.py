"""Benchmark: N fresh containers from one small image, each HTTP-waited and torn down, through the
plugin (what docker_run does) and through the bare docker-py sequence (run, read port, poll,
remove), interleaved in the same run. Prints per-container times and where the plugin's go.

    python benchmarks/bench_containers.py [-n 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import docker
import requests

from pytest_dockerimg import wait
from pytest_dockerimg.build import BuildSpec
from pytest_dockerimg.cleanup import remove_session
from pytest_dockerimg.labels import Identity
from pytest_dockerimg.session import DockerSession
from pytest_dockerimg.settings import Settings
from pytest_dockerimg.stats import Stats

CONTEXT = Path(__file__).resolve().parent.parent / "tests" / "data" / "httpd"


def plugin_once(docker: DockerSession, image_id: str) -> float:
    """What a test with `docker_run(image, ports=["80"], wait=wait.http(80))` costs."""
    started = time.perf_counter()
    scope = docker.scope("bench")
    container = scope.runner.run(image_id, ports=["80"], wait=wait.http(80))
    assert requests.get(container.url(80), timeout=5).ok
    scope.close(keep=False)
    return time.perf_counter() - started


def bare_once(client: docker.DockerClient, image_id: str, poll: float) -> float:
    started = time.perf_counter()
    container = client.containers.run(image_id, detach=True, ports={"80/tcp": ("127.0.0.1", None)})
    container.reload()
    port = container.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
    url = f"http://127.0.0.1:{port}/"
    session = requests.Session()
    session.trust_env = False
    while True:
        try:
            if session.get(url, timeout=1).ok:
                break
        except requests.RequestException:
            pass
        time.sleep(poll)
    container.remove(force=True)
    return time.perf_counter() - started


def summary(name: str, samples: list[float]) -> str:
    return (
        f"{name:<28} mean {statistics.mean(samples) * 1000:7.1f} ms   median "
        f"{statistics.median(samples) * 1000:7.1f} ms   min {min(samples) * 1000:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="containers per variant")
    args = parser.parse_args()

    docker = DockerSession(Settings(), Identity.create())
    engine = docker.engine()
    try:
        image = docker.build(BuildSpec.create(CONTEXT))
        plugin_once(docker, image.id)  # warm-up: connection pools, imports
        bare_once(engine.client, image.id, 0.05)
        docker.stats = Stats()
        plugin, bare_50ms, bare_10ms = [], [], []
        for _ in range(args.n):
            plugin.append(plugin_once(docker, image.id))
            bare_50ms.append(bare_once(engine.client, image.id, 0.05))
            bare_10ms.append(bare_once(engine.client, image.id, 0.01))
        # Back to back, not interleaved: the background removals of one variant cannot slow the
        # other down, and the plugin's total includes waiting for all of them at the session end.
        block = DockerSession(Settings(), docker.identity, owner=False)
        started = time.perf_counter()
        for _ in range(args.n):
            plugin_once(block, image.id)
        block.finish()
        plugin_block = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(args.n):
            bare_once(engine.client, image.id, 0.05)
        bare_block = time.perf_counter() - started
        drain_started = time.perf_counter()
        docker.finish()
        drain = time.perf_counter() - drain_started
        n = args.n
        per_test = statistics.mean(plugin)
        print(f"{n} containers per variant, engine {engine.version}, image {image.short_id}")
        print(summary("plugin (run+wait+teardown)", plugin))
        print(summary("bare docker-py, 50 ms poll", bare_50ms))
        print(summary("bare docker-py, 10 ms poll", bare_10ms))
        print(f"plugin session end (background removals left, image rmi): {drain * 1000:.0f} ms")
        print(
            f"ratio plugin / bare(50 ms): per test {per_test / statistics.mean(bare_50ms):.2f}, "
            f"whole run with the session end {(sum(plugin) + drain) / sum(bare_50ms):.2f}"
        )
        print(f"ratio plugin / bare(10 ms): per test {per_test / statistics.mean(bare_10ms):.2f}")
        print(
            f"back to back, {n} each: plugin {plugin_block:.2f} s (session end included), bare(50 ms) "
            f"{bare_block:.2f} s, ratio {plugin_block / bare_block:.2f}"
        )
        stats = docker.stats
        start, ready, teardown = (
            seconds / n * 1000
            for seconds in (stats.start_seconds, stats.ready_seconds, stats.teardown_seconds)
        )
        print(
            f"plugin per container: create+start {start:.1f} ms, ready {ready:.1f} ms, teardown in the test {teardown:.1f} ms"
        )
    finally:
        remove_session(engine.api, docker.identity)


if __name__ == "__main__":
    main()
