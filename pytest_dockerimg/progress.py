"""Live progress for long builds: silent for the first seconds (a cached build says nothing),
then the step being run, and a heartbeat while a quiet step runs on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

QUIET_SECONDS = 2.0
HEARTBEAT_SECONDS = 15.0
TICK_SECONDS = 0.25


class BuildProgress:
    """Reports `step` changes through `emit` once the build has run for `quiet` seconds.

    A daemon thread ticks so that a step that prints nothing (`RUN sleep 60`) is still announced.
    Use as a context manager around the build; `step(text)` is called for each new step.
    """

    def __init__(
        self,
        name: str,
        emit: Callable[[str], None] | None,
        *,
        quiet: float = QUIET_SECONDS,
        heartbeat: float = HEARTBEAT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._emit = emit
        self._quiet = quiet
        self._heartbeat = heartbeat
        self._clock = clock
        self._started = clock()
        self._step: str | None = None
        self._step_started = self._started
        self._announced: str | None = None
        self._last_emit = 0.0
        self.spoke = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BuildProgress:
        if self._emit is not None:
            self._thread = threading.Thread(target=self._run, name=f"build-progress {self.name}", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self.spoke and kind is None:
            self._say(f"built {self.name} in {self._clock() - self._started:.1f} s")

    def step(self, text: str) -> None:
        with self._lock:
            self._step = text
            self._step_started = self._clock()
        self.tick()

    def tick(self) -> None:
        with self._lock:
            now = self._clock()
            if self._step is None or now - self._started < self._quiet:
                return
            if self._step != self._announced:
                self._announced = self._step
                message = f"building {self.name}: {self._step}"
            elif now - self._last_emit >= self._heartbeat:
                message = f"building {self.name}: {self._step} (running for {now - self._step_started:.0f} s)"
            else:
                return
            self._last_emit = now
            self._say(message)

    def _say(self, message: str) -> None:
        if self._emit is not None:
            self.spoke = True
            self._emit(message)

    def _run(self) -> None:
        while not self._done.wait(TICK_SECONDS):
            self.tick()
