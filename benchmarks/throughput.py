"""Throughput of `omniavsr transcribe` with 1, 2, ... worker processes and on a local Ray (docs/benchmarks.md#throughput).

    .venv/bin/omniavsr synth-corpus CLIPS --clips 8 --sentences 2 --seed 501 --split test
    .venv/bin/python benchmarks/throughput.py CLIPS/clips WORK [--workers 1 2] [--ray] [--mode avsr] [--model demo] [--repeats 2]

Each setting is one whole command as a user runs it (model loading included), writing JSON into WORK; the
settings are interleaved and repeated, so a machine that slows down slows all of them alike. Reported per
setting: the median wall time, files per hour and hours of media per hour, and the ratio to one worker.
Every setting's outputs must equal the one-worker outputs byte for byte (checked; the run fails otherwise).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

OMNIAVSR = str(Path(sys.executable).parent / "omniavsr")


def run(clips: Path, out: Path, mode: str, model: str, extra: list[str]) -> float:
    shutil.rmtree(out, ignore_errors=True)
    command = [OMNIAVSR, "transcribe", str(clips), "-o", str(out), "-f", "json", "--mode", mode, "--model", model, "--quiet", *extra]
    began = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - began


def outputs(out: Path) -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(out.glob("*.json"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--ray", action="store_true", help="also a local Ray using every CPU")
    parser.add_argument("--mode", default="avsr")
    parser.add_argument("--model", default="demo")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    settings = {f"--workers {n}": ["--workers", str(n)] for n in args.workers}
    if args.ray:
        settings["--ray"] = ["--ray"]
    walls: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(args.repeats):
        for name, extra in settings.items():
            walls[name].append(run(args.clips, args.work / name.strip("-").replace(" ", "-"), args.mode, args.model, extra))
    reference = outputs(args.work / next(iter(settings)).strip("-").replace(" ", "-"))
    files = len(reference)
    media = sum(json.loads(text)["duration"] for text in reference.values())
    print(f"{files} files, {media:.1f} s of media, mode {args.mode}, model {args.model}, {args.repeats} runs each\n")
    print("| setting | wall s (median, runs) | files/hour | media hours/hour | vs first |")
    print("|---|---|---|---|---|")
    first = statistics.median(next(iter(walls.values())))
    for name, times in walls.items():
        same = outputs(args.work / name.strip("-").replace(" ", "-")) == reference
        if not same:
            raise SystemExit(f"{name}: outputs differ from {next(iter(settings))}")
        wall = statistics.median(times)
        runs = ", ".join(f"{t:.1f}" for t in times)
        print(f"| {name} | {wall:.1f} ({runs}) | {files * 3600 / wall:.0f} | {media / wall:.2f} | {first / wall:.2f}x |")


if __name__ == "__main__":
    main()
