"""Peak memory of `omniavsr transcribe` on audio-only inputs of different lengths: it must not grow with duration.

Makes one minute of speech (GRID sentences from espeak-ng in random voices, 1-4 s pauses between them, so the
VAD finds about ten utterances a minute), loops it into AAC .m4a files of the requested lengths, and runs
`omniavsr transcribe FILE --model MODEL -o OUT` on each in a fresh process, which reports its own peak
resident memory (VmHWM) as it exits. The ffmpeg decoder beside it is not counted (a few MB, whatever the length).

    .venv/bin/python benchmarks/transcribe_memory.py [--minutes 2 120] [--repeat 3] [--model weights/demo] [--code DIR]

Each length is run --repeat times (the peak moves by tens of MB from run to run: it is reached while a batch is
decoded, and what the allocator keeps then varies); each run's peak is printed, then the median and range.

--code runs the omniavsr_cli package of another checkout (e.g. `git archive COMMIT | tar -x -C DIR`), to
measure before a change.
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

import numpy as np

from omniavsr_cli.media.ffmpeg import find_ffmpeg

REPO = Path(__file__).resolve().parents[1]
MEASURE = """
import sys
from omniavsr_cli.cli import main
try:
    main()
finally:
    peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(f"PEAK_KB {peak_kb}", file=sys.stderr)
"""


def one_minute_of_speech(path: Path, seed: int = 0) -> int:
    """A 60 s 16 kHz wav of sentences and pauses; returns how many sentences it holds."""
    from omniavsr_cli.synthetic.grammar import sentence
    from omniavsr_cli.synthetic.speech import Speaker, Voice

    rng = np.random.default_rng(seed)
    speaker, pieces, count = Speaker(), [np.zeros(8000, np.float32)], 0
    while True:
        speech = speaker.say(sentence(rng), Voice.draw(rng)).audio
        pause = np.zeros(int(rng.uniform(0.3, 1.2) * 16000), np.float32)  # the pauses of fluent speech
        if sum(map(len, pieces)) + len(speech) + len(pause) > 60 * 16000:
            break
        pieces += [speech, pause]
        count += 1
    audio = np.concatenate(pieces)
    audio = np.pad(audio, (0, 60 * 16000 - len(audio)))
    subprocess.run(
        [find_ffmpeg().path, "-nostdin", "-loglevel", "error", "-f", "f32le", "-ar", "16000", "-ac", "1", "-i", "-", str(path)],
        input=audio.astype("<f4").tobytes(),
        check=True,
    )
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[2, 120])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--model", default=str(REPO / "weights" / "demo"))
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose omniavsr_cli runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        minute = Path(tmp) / "minute.wav"
        sentences = one_minute_of_speech(minute)
        for minutes in args.minutes:
            path = Path(tmp) / f"{minutes}min.m4a"
            subprocess.run(
                [
                    find_ffmpeg().path,
                    "-nostdin",
                    "-loglevel",
                    "error",
                    "-stream_loop",
                    str(minutes - 1),
                    "-i",
                    str(minute),
                    "-c:a",
                    "aac",
                    "-b:a",
                    "64k",
                    str(path),
                ],
                check=True,
            )
            peaks = []
            for attempt in range(args.repeat):
                out = Path(tmp) / f"out{minutes}-{attempt}"
                start = time.perf_counter()
                run = subprocess.run(
                    [sys.executable, "-c", MEASURE, "transcribe", str(path), "--model", args.model, "-o", str(out), "-f", "json"],
                    cwd=args.code,
                    capture_output=True,
                    text=True,
                )
                seconds = time.perf_counter() - start
                peak = next((int(line.split()[1]) for line in run.stderr.splitlines() if line.startswith("PEAK_KB")), 0) / 1024
                segments = len(json.loads((out / f"{minutes}min.json").read_text())["segments"]) if run.returncode == 0 else 0
                status = "ok" if run.returncode == 0 else f"exit {run.returncode}: {run.stderr.strip().splitlines()[-2:]}"
                print(
                    f"{minutes:>4} min ({sentences * minutes} sentences): {segments} segments, {seconds:.0f} s, "
                    f"peak RSS {peak:.0f} MiB, {status}",
                    flush=True,
                )
                peaks.append(peak)
            print(
                f"{minutes:>4} min: peak RSS median {statistics.median(peaks):.0f} MiB, range {min(peaks):.0f}-{max(peaks):.0f} MiB",
                flush=True,
            )


if __name__ == "__main__":
    main()
