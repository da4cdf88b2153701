"""Benchmark: how soon after a service starts listening does `wait.http` see it ready?

A busybox container sleeps a known delay, touches a stamp file and execs httpd; the stamp's
mtime (nanoseconds, the kernel's clock, which the host shares) is when the service is about to
listen. `ready - stamp` is measured from that mtime to the moment `docker_run(...,
wait=wait.http(80))` returns, so it is an upper bound: it includes httpd's exec and bind, the
coarseness of file timestamps (they lag by up to one kernel tick) and the return from `run`.

    python benchmarks/bench_readiness.py [--rounds 10] [--delays 0.3 1 2.5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from pytest_dockerimg import wait
from pytest_dockerimg.build import BuildSpec
from pytest_dockerimg.labels import Identity
from pytest_dockerimg.session import DockerSession
from pytest_dockerimg.settings import Settings

DOCKERFILE = """\
FROM busybox:latest
RUN mkdir -p /www
EXPOSE 80
"""


def stamp_time(container) -> float:
    """The stamp file's mtime, as seconds since the epoch."""
    result = container.exec(["stat", "-c", "%y", "/www/stamp"])
    if result.exit_code != 0:
        raise SystemExit(f"no stamp in {container.name}: {result.output}")
    day, clock, zone = result.output.split()  # 2026-12-06 14:10:38.347628757 +0000
    whole, _, fraction = clock.partition(".")
    base = datetime.strptime(f"{day} {whole} {zone}", "%Y-%m-%d %H:%M:%S %z").timestamp()
    return base + float(f"0.{fraction or 0}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="containers per delay")
    parser.add_argument("--delays", type=float, nargs="+", default=[0.3, 1.0, 2.5])
    args = parser.parse_args()
    docker = DockerSession(Settings(), Identity.create())
    engine = docker.engine()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-readiness-") as tmp:
            (Path(tmp) / "Dockerfile").write_text(DOCKERFILE)
            image = docker.build(BuildSpec.create(tmp))
        late: dict[float, list[float]] = {delay: [] for delay in args.delays}
        for _ in range(args.rounds):
            for delay in args.delays:
                scope = docker.scope("readiness")
                command = f"sleep {delay}; touch /www/stamp; exec httpd -f -p 80 -h /www"
                container = scope.runner.run(
                    image, ports=["80"], command=["sh", "-c", command], wait=wait.http(80, "/stamp")
                )
                ready = time.time()
                late[delay].append(ready - stamp_time(container))
                docker.close_scope(scope, failed=False)
        print(f"engine {engine.version}; {args.rounds} containers per delay; ready minus listening, in ms")
        print(f"{'delay':>8}{'median':>10}{'max':>10}{'min':>10}")
        for delay, samples in late.items():
            ms = [sample * 1000 for sample in samples]
            print(f"{delay:>7.1f}s{statistics.median(ms):>10.1f}{max(ms):>10.1f}{min(ms):>10.1f}")
        everything = [sample * 1000 for samples in late.values() for sample in samples]
        print(
            f"{'all':>8}{statistics.median(everything):>10.1f}{max(everything):>10.1f}{min(everything):>10.1f}"
        )
    finally:
        docker.finish()


if __name__ == "__main__":
    main()
