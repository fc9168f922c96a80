"""Stopping a run cleanly: Ctrl-C or SIGTERM (a scheduler pre-empting the job) ends training after the
current step, with a checkpoint, in every process at the same step; a second Ctrl-C stops at once. The
batch-loading workers leave both signals to the trainer.
"""

from __future__ import annotations

import logging
import signal
import threading

import torch

from .distributed import Processes, all_sum

log = logging.getLogger("omniavsr")


class StopSignal:
    """The handlers of Ctrl-C and SIGTERM while training runs (the previous ones are put back on leaving)."""

    def __init__(self):
        self.flag = False
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self.previous[number] = signal.signal(number, self._handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def _handle(self, number, frame) -> None:
        if self.flag and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.flag = True
        log.warning("stopping after this step (Ctrl-C again to stop at once)")

    def requested(self, processes: Processes) -> bool:
        """Whether any process was asked to stop (all of them stop at the same step)."""
        return bool(all_sum(torch.tensor(float(self.flag)), processes) > 0)


def leave_signals_to_the_trainer(worker: int) -> None:
    """Loader workers ignore Ctrl-C and SIGTERM: the trainer decides when to stop, and stops them."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
