"""Benchmark: what two workers can gain on this machine at best. The 10 containers of the job's
floor (see bench_job.py: run with port 80 on a random loopback port, reload, GET every 20 ms
until 200, remove with force) as a plain docker-py loop, and the same loop on two threads,
alternated; medians of the rounds. Build, interpreter start and imports are left out: this is
the containers phase alone, with no test framework at all.

Issue 12 asks the plugin with `-n 2` for at most 0.5x the floor's whole job (build and process
start included). When two threads of plain docker-py already need more than that for the
containers alone, no plugin can get there on this engine and machine.

    python benchmarks/bench_parallel_floor.py [--rounds 5] [--containers 10]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import requests

DOCKERFILE = b"""\
FROM busybox:latest
RUN mkdir -p /www && echo 'bench job' > /www/index.html
EXPOSE 80
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
"""


def one_container(client: docker.DockerClient, image_id: str) -> None:
    container = client.containers.run(image_id, detach=True, ports={"80/tcp": ("127.0.0.1", None)})
    container.reload()
    port = container.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.02)
    container.remove(force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--containers", type=int, default=10)
    args = parser.parse_args()
    client = docker.from_env()
    image, _ = client.images.build(fileobj=io.BytesIO(DOCKERFILE), rm=True)
    assert image.id is not None
    times: dict[int, list[float]] = {1: [], 2: []}
    try:
        for _ in range(args.rounds):
            for workers in times:
                started = time.monotonic()
                with ThreadPoolExecutor(workers) as pool:
                    list(pool.map(lambda _: one_container(client, str(image.id)), range(args.containers)))
                times[workers].append((time.monotonic() - started) * 1000)
    finally:
        client.images.remove(image.id, force=True)
    sequential = statistics.median(times[1])
    print(f"{args.containers} containers, {args.rounds} rounds alternated; medians, in ms")
    for workers, runs in times.items():
        median = statistics.median(runs)
        print(
            f"plain docker-py, {workers} worker(s): {median:7.0f}  ({median / sequential:.2f}x)  "
            f"runs: {', '.join(f'{run:.0f}' for run in runs)}"
        )


if __name__ == "__main__":
    main()
