"""Subtitles of a long input: every cue within its limits, every word inside its cue (docs/word-timings.md).

    .venv/bin/omniavsr synth-corpus OUT --clips 1 --sentences 250 --seed 23 --split test   # about 10 minutes
    .venv/bin/python benchmarks/subtitles_long.py OUT/clips/s23-000000.mp4 [--model demo] [--mode avsr]

Transcribes the input once with word timestamps, then builds its SRT cues with the readable defaults and
with other settings people use (narrow lines, one line, highlighted words, short cues), and reports for each
the cue count, the widest line, the longest cue and the problems writers.check_cues finds (there must be
none). Also how long transcription took with and without word timestamps, on the same input, twice each,
interleaved (a busy machine slows both alike).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from omniavsr_cli import load_model
from omniavsr_cli.writers import SubtitleOptions, check_cues, display_width, subtitle_cues

SETTINGS = {
    "defaults (42 x 2, 7 s)": SubtitleOptions(),
    "highlighted words": SubtitleOptions(highlight_words=True),
    "3 words a line": SubtitleOptions(max_words_per_line=3),
    "one line of 16": SubtitleOptions(max_line_width=16, max_line_count=1),
    "12 x 2, cues of at most 1 s": SubtitleOptions(max_line_width=12, max_cue_s=1.0),
}


def transcribed(model, path: Path, mode: str, words: bool) -> tuple[list, float, dict]:
    began = time.perf_counter()
    segments, info = model.transcribe(path, mode=mode, word_timestamps=words)
    segments = list(segments)
    return segments, time.perf_counter() - began, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("media", type=Path)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--mode", default="avsr")
    arguments = parser.parse_args()
    model = load_model(arguments.model)
    segments, with_words, info = transcribed(model, arguments.media, arguments.mode, True)
    _, without_words, _ = transcribed(model, arguments.media, arguments.mode, False)
    with_words = min(with_words, transcribed(model, arguments.media, arguments.mode, True)[1])
    without_words = min(without_words, transcribed(model, arguments.media, arguments.mode, False)[1])
    words = sum(len(s.words) for s in segments)
    print(f"{arguments.media.name}: {info['duration']:.0f} s, {len(segments)} segments, {words} words")
    print(
        f"transcribe: {with_words:.1f} s with word timestamps, {without_words:.1f} s without ({with_words / without_words - 1:+.1%}; the faster of two runs each)"
    )
    print("| settings | cues | widest line | longest cue | problems |\n|---|---|---|---|---|")
    for name, options in SETTINGS.items():
        cues = subtitle_cues(segments, options)
        widest = max(display_width("".join(word.word for word in line).strip()) for cue in cues for line in cue.lines)
        longest = max(cue.end - cue.start for cue in cues)
        problems = check_cues(cues, options)
        print(f"| {name} | {len(cues)} | {widest} | {longest:.2f} s | {len(problems)} |")
        for problem in problems[:5]:
            print(f"    {problem}")


if __name__ == "__main__":
    main()
