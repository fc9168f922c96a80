"""How long `omniavsr --help` and `omniavsr score --help` take (target: under 1 s). Median of 7 runs.

.venv/bin/python benchmarks/cli_startup.py
"""

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

omniavsr = shutil.which("omniavsr", path=str(Path(sys.executable).parent))
for args in (["--help"], ["score", "--help"], ["--version"]):
    times = []
    for _ in range(7):
        start = time.perf_counter()
        subprocess.run([omniavsr, *args], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    print(
        f"omniavsr {' '.join(args):<14} median {statistics.median(times) * 1000:5.0f} ms  (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})"
    )
