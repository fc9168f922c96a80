"""How many worker processes a job of many inputs gets: ``workers="auto"`` in transcribe and prep-lips.

A worker process costs its start (about 1.7 s to import what it runs) and about 0.5 GB (FaceMesh, the VAD,
the frames in flight). It repays that only when it has several inputs to work on: on 2 cores, two workers
gave 1.03x one worker's throughput on 8 inputs of 4.8 s and 1.23x on 8 of 20 s (docs/benchmarks.md), so
``auto`` starts one per core as long as each gets at least :data:`INPUTS_PER_WORKER` inputs and the memory
available holds :data:`WORKER_BYTES` for each; anything less is one worker in this process.
"""

from __future__ import annotations

import os

from .errors import UsageError, parameter

AUTO = "auto"
INPUTS_PER_WORKER = 4
WORKER_BYTES = 1 << 30  # twice what one was measured to hold, for larger frames than the test clips'


def usable_cores() -> int:
    """The cores this process may run on (a job scheduler's CPU set, where the system says)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes of memory available to new processes without swapping (Linux's MemAvailable); None elsewhere."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def worker_count(workers: int | str, inputs: int) -> int:
    """How many workers prepare ``inputs`` inputs: ``workers`` (never more than there are inputs), or with
    :data:`AUTO` one per usable core, each with at least :data:`INPUTS_PER_WORKER` inputs, within memory."""
    if workers == AUTO:
        memory = available_memory()
        by_memory = memory // WORKER_BYTES if memory is not None else inputs
        return max(1, min(usable_cores(), by_memory, inputs // INPUTS_PER_WORKER))
    check_workers(workers)
    return max(1, min(int(workers), inputs))


def check_workers(workers: int | str) -> None:
    if workers != AUTO and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise UsageError(f"{parameter('workers')} {workers!r}: give a number of at least 1, or {AUTO!r}")
