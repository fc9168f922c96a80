"""Training throughput: seconds per optimiser step (wall clock, and inside the model), LLM tokens/s and peak
memory of `omniavsr train`, with the batches loaded in the training process (--workers 0) and by loader
processes (--workers 2), each decoding every clip or reading it from a warm clip cache (--cache).

Clips of 2-4 s (random mouth video as H.264 mp4 and noise audio as a 16 kHz wav, the prep-lips layout) go
through the small random-weight model (omniavsr_cli.model.random_init.small_config) with the recipe's
augmentation, LoRA and projectors trained, as the paper. Each setting runs --steps steps in a fresh run
directory; the first step (start-up) is left out of the means.

    .venv/bin/python benchmarks/train_throughput.py [--clips 24] [--steps 12] [--max-frames 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from omniavsr_cli.media.encode import VideoWriter
from omniavsr_cli.model.random_init import save_random_model, small_config
from omniavsr_cli.training.data import clip_cache, load_example, read_manifest
from omniavsr_cli.training.progress import LOG_FILE
from omniavsr_cli.training.trainer import TrainOptions, train


def write_clips(root: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    folder = root / "rois" / "spk"
    folder.mkdir(parents=True)
    lines = []
    for n in range(count):
        frames = 50 + (n * 13) % 51
        writer = VideoWriter(folder / f"c{n}.mp4", 96, 96)
        for _ in range(frames):
            writer.write(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8))
        writer.close()
        with wave.open(str(folder / f"c{n}.wav"), "wb") as audio:
            audio.setnchannels(1), audio.setsampwidth(2), audio.setframerate(16000)
            audio.writeframes((rng.normal(0, 3000, frames * 640)).astype("<i2").tobytes())
        lines.append(f"rois,spk/c{n}.mp4,{frames},,the a and to of in is it\n")
    manifest = root / "rois" / "manifest.csv"
    manifest.write_text("".join(lines))
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--max-frames", type=int, default=300)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        manifest = write_clips(root, arguments.clips)
        model = save_random_model(root / "model", small_config())
        cache = clip_cache(root / "cache")
        for example in read_manifest(manifest).examples:
            load_example(example, cache)  # warm: the runs below measure reading it back
        print("| loader | clips | s/step (wall) | s/step (model) | LLM tokens/s (wall) | peak memory |")
        print("|---|---|---|---|---|---|")
        for workers, cached in ((0, False), (2, False), (0, True), (2, True)):
            output = root / f"run-{workers}-{cached}"
            finished: list[float] = []
            train(
                TrainOptions(
                    manifest=manifest,
                    output=output,
                    model=str(model),
                    max_steps=arguments.steps,
                    max_frames=arguments.max_frames,
                    workers=workers,
                    cache=cache if cached else None,
                    log_every=10**6,
                    save_every=10**6,
                ),
                on_step=lambda step, record, finished=finished: finished.append(time.perf_counter()),
            )
            records = [json.loads(line) for line in (output / LOG_FILE).read_text().splitlines()][1:]
            wall = (finished[-1] - finished[0]) / (len(finished) - 1)  # loading included
            compute = statistics.mean(r["seconds"] for r in records)
            tokens = statistics.mean(r["tokens_per_s"] * r["seconds"] for r in records) / wall
            print(
                f"| {'in process' if workers == 0 else f'{workers} workers'} | {'cache' if cached else 'decoded'} | {wall:.3f} | {compute:.3f} | {tokens:.0f} | "
                f"{max(r['memory_gb'] for r in records):.2f} GB |"
            )


if __name__ == "__main__":
    main()
