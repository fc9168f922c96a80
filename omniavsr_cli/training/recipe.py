"""The official objective and schedule (omni-avsr.md §5): one audio and one video rate drawn per batch, the
tasks' losses weighted (1·L_ASR + 1.5·L_VSR + 1·L_AVSR) / 3 and scaled as on the recipe's 2 GPUs, and the
learning rate's linear warmup and cosine decay.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from ..model.config import TASKS

# The official step multiplies the loss by world_size / (clips in the batch over all processes), and the
# released models were trained on 2 GPUs. Using 2 whatever the number of processes gives exactly the recipe's
# gradients on 2 GPUs, and N processes with b clips each the same result as one process with N*b clips
# (AdamW is nearly blind to the scale; its eps and the gradient clipping are not).
RECIPE_PROCESSES = 2


def cosine_schedule(warmup: int, total: int) -> Callable[[int], float]:
    """The learning-rate factor at an optimiser step: linear warmup, then a half cosine to zero at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    return factor


def draw_rates(audio_rates: tuple[int, ...], video_rates: tuple[int, ...], seed: int, epoch: int, position: int) -> tuple[int, int]:
    """One audio and one video rate for a batch, uniformly, as the official ``random.choice``; seeded by the
    batch's place, so every process (and a resumed run) draws the same."""
    draw = random.Random(f"{seed}:rates:{epoch}:{position}")
    return draw.choice(audio_rates), draw.choice(video_rates)


def weighted_loss(losses: dict, weights: tuple[float, float, float]):
    """The official objective: (w_ASR·L_ASR + w_VSR·L_VSR + w_AVSR·L_AVSR) / 3 (a task of weight 0 is not computed)."""
    return sum(weight * losses[task] for task, weight in zip(TASKS, weights) if weight) / 3


def trained_tasks(weights: tuple[float, float, float]) -> tuple[str, ...]:
    """The tasks whose loss counts. A task of weight 0 is not run at all, nor an encoder no task needs: a
    demo model learns ASR first at a fraction of the cost (docs/synth-corpus.md)."""
    return tuple(task for task, weight in zip(TASKS, weights) if weight)
