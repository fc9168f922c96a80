"""How long `omniavsr score` takes on 100,000 utterance pairs of about 12 words (the issue's target: < 10 s).

Runs the real console script end to end (start-up, reading, normalising, jiwer alignment, CER, report) on
generated Kaldi-format files, three times per configuration, and prints the median. Usage:

    .venv/bin/python benchmarks/score_speed.py [--pairs 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_files(folder: Path, pairs: int) -> tuple[Path, Path]:
    rng = random.Random(0)
    # 5000 pseudo-words whose lengths follow English text (2-9 letters, about 4.8 on average).
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    lengths = [2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 7, 7, 8, 9]
    vocabulary = ["".join(rng.choices(letters, k=rng.choice(lengths))) for _ in range(5000)]
    with open(folder / "ref.txt", "w") as ref, open(folder / "hyp.txt", "w") as hyp:
        for index in range(pairs):
            words = rng.choices(vocabulary, k=rng.randint(8, 16))  # about 12 on average
            guess = list(words)
            for _ in range(rng.randint(0, 3)):
                edit = rng.random()
                position = rng.randrange(len(guess) + 1)
                if edit < 0.5 and position < len(guess):
                    guess[position] = rng.choice(vocabulary)
                elif edit < 0.75 and position < len(guess):
                    del guess[position]
                else:
                    guess.insert(position, rng.choice(vocabulary))
            ref.write(f"utt{index:06d} {' '.join(words).upper()}\n")
            hyp.write(f"utt{index:06d} {' '.join(guess)}\n")
    return folder / "hyp.txt", folder / "ref.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    omniavsr = shutil.which("omniavsr", path=str(Path(sys.executable).parent))
    with tempfile.TemporaryDirectory() as tmp:
        hyp, ref = make_files(Path(tmp), args.pairs)
        words = [line.split()[1:] for line in open(ref)]
        total = sum(len(w) for w in words)
        letters = sum(len(x) for w in words for x in w)
        print(
            f"{args.pairs} pairs, {total} reference words ({total / args.pairs:.1f} per utterance, {letters / total:.1f} letters per word)"
        )
        for label, extra in [
            ("summary, lrs3", []),
            ("json report, lrs3", ["--report", "json"]),
            ("summary, basic", ["--normalizer", "basic"]),
            ("summary, whisper-en", ["--normalizer", "whisper-en"]),
            ("summary + --ci (1000 resamples)", ["--ci"]),
        ]:
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                subprocess.run([omniavsr, "score", str(hyp), str(ref), *extra], check=True, stdout=subprocess.DEVNULL)
                times.append(time.perf_counter() - start)
            print(f"{label:<34} median {statistics.median(times):6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
