"""Seconds spent per stage of a run (probe, decode_audio, vad, video, landmarks, encoders, llm), for `omniavsr
bench` and benchmarks: one timer object, passed to whatever does the work."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator


class StageTimer:
    """Seconds per stage, added up over every time the stage runs."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def timed(self, stage: str, wait: Callable[[], object] | None = None) -> Iterator[None]:
        """Time the block as ``stage``. ``wait`` is called before the clock stops (a GPU's synchronize)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            if wait is not None:
                wait()
            self.add(stage, time.perf_counter() - started)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def merge(self, other: StageTimer) -> None:
        for stage, seconds in other.seconds.items():
            self.add(stage, seconds)
