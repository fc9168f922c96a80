"""prep-lips speed and memory on 224x224, 25 fps talking-face video (one worker).

For each duration it makes a clip from the moving real portrait used by the tests, then measures in a fresh
process: the bare landmark cost (FaceMesh on already decoded frames), the whole prep-lips of the clip
(decode + landmarks + crop + mp4 + wav + npz), and that process's peak RSS. Median of --repeats runs.

    .venv/bin/python benchmarks/prep_lips_speed.py [--seconds 20 120] [--repeats 3]
    .venv/bin/python benchmarks/prep_lips_speed.py --clip VIDEO [--repeats 3]    # a video of your own instead

Also times the whole `omniavsr prep-lips` command on the clip (start-up included), as a user runs it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
from pathlib import Path
from omniavsr_cli.inputs import InputFile
from omniavsr_cli.lips.landmarks import MediaPipeFaceMesh
from omniavsr_cli.lips.prep import PrepOptions, prepare_clip
from omniavsr_cli.media.decode import load_video

clip, out, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if mode == "landmarks":
    frames = load_video(clip)
    with MediaPipeFaceMesh() as detector:
        started = time.perf_counter()
        for index, frame in enumerate(frames):
            detector.detect(frame, index)
        seconds = time.perf_counter() - started
    count = len(frames)
else:
    started = time.perf_counter()
    record = prepare_clip(InputFile(clip, "clip"), out, PrepOptions())
    seconds = time.perf_counter() - started
    assert record.status == "ok", record.error
    count = record.frames
# VmHWM, not ru_maxrss: the latter inherits the parent's peak across fork/exec.
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "frames": count, "peak_rss_mb": peak_kb / 1024}))
"""


def make_clip(path: Path, seconds: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from faces import face_frames, write_video

    write_video(path, face_frames(seconds * 25), audio_seconds=seconds)


def measure(clip: Path, mode: str, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            result = subprocess.run([sys.executable, "-c", CHILD, str(clip), out, mode], capture_output=True, text=True, check=True)
            runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    seconds = statistics.median(run["seconds"] for run in runs)
    return {
        "frames": runs[0]["frames"],
        "seconds": seconds,
        "fps": runs[0]["frames"] / seconds,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }


def command_seconds(clip: Path, repeats: int) -> float:
    """The whole `omniavsr prep-lips CLIP -o OUT` command's wall time (median)."""
    walls = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            began = time.perf_counter()
            subprocess.run(
                [str(Path(sys.executable).parent / "omniavsr"), "prep-lips", str(clip), "-o", out], check=True, capture_output=True
            )
            walls.append(time.perf_counter() - began)
    return statistics.median(walls)


def report(name: str, clip: Path, repeats: int) -> None:
    bare = measure(clip, "landmarks", repeats)
    whole = measure(clip, "prep", repeats)
    command = command_seconds(clip, repeats)
    print(
        f"{name}: prep-lips {whole['fps']:.0f} frames/s ({whole['fps'] / 25:.1f}x real time), "
        f"landmarks alone {bare['fps']:.0f} frames/s, ratio {whole['seconds'] / bare['seconds']:.2f}; "
        f"the whole command {command:.1f} s, ratio {command / bare['seconds']:.2f}; peak RSS {whole['peak_rss_mb']:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, nargs="+", default=[20, 120])
    parser.add_argument("--clip", type=Path, help="measure this video instead of generated ones")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.clip:
        report(str(args.clip.name), args.clip, args.repeats)
        return
    with tempfile.TemporaryDirectory() as folder:
        for seconds in args.seconds:
            clip = Path(folder) / f"face{seconds}.mp4"
            make_clip(clip, seconds)
            report(f"{seconds:>4} s 224x224", clip, args.repeats)


if __name__ == "__main__":
    main()
