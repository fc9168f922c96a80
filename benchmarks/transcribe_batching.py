"""Batched decoding against the official evaluation's loop (one clip at a time), same clips, same settings.

32 clips of 2.4-4.4 s (random audio and mouth video) go through the small random-weight model
(omniavsr_cli.model.random_init.small_config) for each task, with 15 beams: once through BatchDecoder as
`omniavsr transcribe` batches them, once one at a time. The tokens must be identical; the table gives the
seconds (median of --repeats), split into encoders and LLM, and the speedup.

    .venv/bin/python benchmarks/transcribe_batching.py [--clips 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from omniavsr_cli.decoding import BatchDecoder, BatchLimits, DecodingOptions
from omniavsr_cli.model.omni import Clip
from omniavsr_cli.model.random_init import random_model, small_config
from omniavsr_cli.timing import StageTimer


def clips(count: int) -> list[Clip]:
    generator = torch.Generator().manual_seed(0)
    made = []
    for n in range(count):
        frames = 60 + (n * 7) % 51
        made.append(
            Clip(audio=torch.randn(frames * 640, generator=generator) * 0.1, video=torch.randn(frames, 1, 88, 88, generator=generator))
        )
    return made


def timed(run) -> tuple[float, dict, list]:
    """Wall seconds, seconds per stage (encoders, llm) and the tokens of ``run(timer)``."""
    timer = StageTimer()
    started = time.perf_counter()
    with torch.inference_mode():
        tokens = run(timer)
    return time.perf_counter() - started, timer.seconds, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    model = random_model(small_config()).module
    inputs = clips(arguments.clips)
    options = DecodingOptions(num_beams=15)
    budget = options.max_new_tokens_for(max(c.seconds for c in inputs))
    options = DecodingOptions(num_beams=15, max_new_tokens=budget)  # one budget for all, as in one pipeline batch
    print(f"{arguments.clips} clips, 15 beams, up to {budget} new tokens, small random model, {torch.get_num_threads()} threads")
    print(f"{'task':<5} {'loop s':>8} {'(enc/llm)':>12} {'batched s':>10} {'(enc/llm)':>12} {'speedup':>8}  same tokens")
    for task in ("asr", "vsr", "avsr"):
        loops, batches = [], []
        for _ in range(arguments.repeats):
            loops.append(timed(lambda timer, task=task: [model.generate([c], task, (4, 2), options, timer)[0] for c in inputs]))
            batches.append(
                timed(
                    lambda timer, task=task: [
                        r.ids for r in BatchDecoder(model, (4, 2), options, BatchLimits(), guards=False, timer=timer).decode(inputs, task)
                    ]
                )
            )
        loop = sorted(loops, key=lambda r: r[0])[len(loops) // 2]
        batch = sorted(batches, key=lambda r: r[0])[len(batches) // 2]
        same = all(b[2] == loop[2] for b in batches + loops)
        split = lambda r: f"{r[1].get('encoders', 0):.2f}/{r[1].get('llm', 0):.2f}"  # noqa: E731
        print(
            f"{task:<5} {loop[0]:>8.2f} {split(loop):>12} {batch[0]:>10.2f} {split(batch):>12} {loop[0] / batch[0]:>7.1f}x  {'yes' if same else 'NO'}"
        )


if __name__ == "__main__":
    main()
