"""Benchmark: one cold and one cached build of a small busybox-based image, the cached one as a
new session would see it (the first session's image removed with `rmi --no-prune`), and the
reuse of an unchanged, kept image (no `docker build` at all).

    python benchmarks/bench_build.py
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

from pytest_dockerimg.build import Builder, BuildSpec
from pytest_dockerimg.cleanup import remove_session
from pytest_dockerimg.engine import connect
from pytest_dockerimg.labels import Identity

DOCKERFILE = """\
FROM busybox:latest
RUN echo {token} > /token
RUN mkdir -p /www && echo 'Hi, I am in your container' > /www/index.html
ENV GREETING=hello
EXPOSE 80
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
"""


def timed_build(engine, identity: Identity, spec: BuildSpec, *, keep: bool = False) -> tuple[float, str]:
    started = time.perf_counter()
    image = Builder(engine, identity, keep=keep).build(spec)
    seconds = time.perf_counter() - started
    cached = sum(step.cached for step in image.steps)
    how = "reused, no build" if image.reused else f"{cached}/{len(image.steps)} steps cached"
    return seconds, how


def main() -> None:
    engine = connect()
    with tempfile.TemporaryDirectory() as folder:
        context = Path(folder)
        (context / "Dockerfile").write_text(DOCKERFILE.format(token=uuid.uuid4().hex))
        spec = BuildSpec.create(context, tag=f"bench/build:{uuid.uuid4().hex[:8]}")
        first, second, kept = Identity.create(), Identity.create(), Identity.create()
        try:
            cold = timed_build(engine, first, spec)
            remove_session(engine.api, first)  # what the end of a session does
            cached = timed_build(engine, second, spec)
            remove_session(engine.api, second)
            timed_build(engine, kept, spec, keep=True)
            reuse = timed_build(engine, Identity.create(), spec)
        finally:
            for identity in (first, second):
                remove_session(engine.api, identity)
            engine.client.images.remove(spec.tag, force=True, noprune=True)
    print(f"engine {engine.version}")
    print(f"cold build:                 {cold[0]:.2f} s ({cold[1]})")
    print(f"cached build (new session): {cached[0]:.2f} s ({cached[1]})")
    print(f"kept image, inputs unchanged: {reuse[0] * 1000:.0f} ms ({reuse[1]})")


if __name__ == "__main__":
    main()
