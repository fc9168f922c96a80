"""Peak memory of `omniavsr score` on large transcript pairs, the parent and its character-alignment worker together.

Generates Kaldi-format pairs of the requested sizes (the data of score_speed.py, about 12 words per line),
runs the real console script on each and samples the resident memory of its whole process tree every
20 ms (a worker's peak is not in the parent's ru_maxrss). Usage:

    .venv/bin/python benchmarks/score_memory.py [--megabytes 5 25]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from score_speed import make_files

BYTES_PER_PAIR = 160  # bytes of one reference line plus one hypothesis line of make_files


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, nargs="+", default=[5, 25])
    args = parser.parse_args()
    omniavsr = shutil.which("omniavsr", path=str(Path(sys.executable).parent))
    for megabytes in args.megabytes:
        with tempfile.TemporaryDirectory() as tmp:
            hyp, ref = make_files(Path(tmp), int(megabytes * 1e6 / BYTES_PER_PAIR))
            size = hyp.stat().st_size + ref.stat().st_size
            start = time.perf_counter()
            process = psutil.Popen([omniavsr, "score", str(hyp), str(ref)], stdout=subprocess.DEVNULL)
            peak = 0
            while process.poll() is None:
                try:
                    peak = max(peak, tree_rss(process))
                except psutil.NoSuchProcess:
                    break
                time.sleep(0.02)
            seconds = time.perf_counter() - start
            status = "ok" if process.returncode == 0 else f"exit {process.returncode}"
            print(
                f"{size / 1e6:6.1f} MB pair (hyp + ref): peak RSS {peak / 2**20:7.0f} MiB "
                f"({peak / size:.1f}x the input), {seconds:.1f} s, {status}"
            )


if __name__ == "__main__":
    main()
