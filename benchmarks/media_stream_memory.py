"""Peak memory of streaming 25 fps frames and 16 kHz audio does not grow with duration.

Generates 1280x720 videos of increasing length (H.264 ultrafast + AAC), streams every frame and sample
through omniavsr_cli.media.decode in a fresh process each, and prints that process's peak RSS and the
decode speed. Usage: .venv/bin/python benchmarks/media_stream_memory.py [--minutes 1 4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from omniavsr_cli.media.ffmpeg import find_ffmpeg

MEASURE = """
import sys, time
from omniavsr_cli.media.decode import stream_audio, stream_video
start = time.perf_counter()
frames = sum(len(chunk) for chunk in stream_video(sys.argv[1]))
samples = sum(len(chunk) for chunk in stream_audio(sys.argv[1]))
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: the latter inherits the parent's peak across fork/exec.
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(frames, samples, round(seconds, 2), peak_kb // 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 4])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            path = Path(tmp) / f"{minutes}min.mp4"
            subprocess.run(
                [
                    find_ffmpeg().path,
                    "-loglevel",
                    "error",
                    "-f",
                    "lavfi",
                    "-i",
                    f"testsrc2=size=1280x720:rate=30:duration={minutes * 60}",
                    "-f",
                    "lavfi",
                    "-i",
                    f"sine=duration={minutes * 60}",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-c:a",
                    "aac",
                    "-shortest",
                    str(path),
                ],
                check=True,
            )
            out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, check=True)
            frames, samples, seconds, peak_mb = out.stdout.split()
            print(
                f"{minutes:>5} min 1280x720 30 fps: {frames} frames at 25 fps, {samples} samples, "
                f"{seconds} s to decode ({int(frames) / float(seconds):.0f} frames/s), peak RSS {peak_mb} MB"
            )


if __name__ == "__main__":
    main()
