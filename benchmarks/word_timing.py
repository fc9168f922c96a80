"""Word timings as transcribe gives them, against known word times (results in docs/word-timings.md).

    .venv/bin/python benchmarks/word_timing.py WORDS [--clips DIR] [--model demo] [--modes asr:4,2 avsr:4,2 ...]

WORDS is anything omniavsr_cli.scoring.word_times reads (a synth-corpus corpus.jsonl, a words.json, LRS3
.txt files); the clips are <id>.mp4 under --clips (default: a synth-corpus's clips/ folder, or the folder of
a words.json). Each mode transcribes every clip as `omniavsr transcribe` does (VAD chunks, FaceMesh crops,
beam search, the model's alignment heads) and scores the words it decoded: a decoded word is matched to a
reference word by aligning the texts (a misrecognised word has no reference time and is not scored).
The baseline is the best a user had before word timings: each segment of a run without them (chunk bounds)
with its words spread evenly over it. Reported: median absolute error of word starts and of word ends with
their interquartile range, and the share of starts and ends within 80 and 200 ms.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from omniavsr_cli import load_model
from omniavsr_cli.scoring.word_times import WordTime, read_word_times, summarise, timing_errors

MODES = ["asr:4,2", "avsr:4,2", "vsr:4,2", "asr:16,2", "vsr:4,5", "avsr:16,5"]


def evenly_spread(segments) -> list[WordTime]:
    words = []
    for segment in segments:
        texts = segment.text.split()
        edges = np.linspace(segment.start, segment.end, len(texts) + 1)
        words += [WordTime(text, float(a), float(b)) for text, a, b in zip(texts, edges[:-1], edges[1:])]
    return words


def timed(segments) -> list[WordTime]:
    return [WordTime(word.word.strip(), word.start, word.end) for segment in segments for word in segment.words]


def measure(model, reference: dict[str, list[WordTime]], clips: Path, task: str, rates: tuple[int, int], words: bool) -> list:
    names = sorted(name for name in reference if (clips / f"{name}.mp4").is_file())
    paths = [clips / f"{name}.mp4" for name in names]
    errors = []
    for result in model.transcribe_many(paths, mode=task, rates=rates, word_timestamps=words):
        if not result.ok:
            raise result.error
        hypothesis = timed(result.transcript.segments) if words else evenly_spread(result.transcript.segments)
        errors += timing_errors(hypothesis, reference[names[result.index]])
    return errors


def row(mode: str, method: str, errors: list) -> dict:
    numbers = summarise(errors)
    return {
        "mode": mode,
        "method": method,
        "words": numbers["count"],
        "start_ms": round(numbers["start"]["median"] * 1000),
        "start_iqr_ms": round(numbers["start"]["iqr"] * 1000),
        "end_ms": round(numbers["end"]["median"] * 1000),
        "end_iqr_ms": round(numbers["end"]["iqr"] * 1000),
        "within_80": round(numbers["all"]["within_80ms"] * 100, 1),
        "within_200": round(numbers["all"]["within_200ms"] * 100, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("words", type=Path)
    parser.add_argument("--clips", type=Path)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--modes", nargs="+", default=MODES)
    parser.add_argument("--json", type=Path, help="write the rows here too")
    arguments = parser.parse_args()
    model = load_model(arguments.model)
    reference = read_word_times(arguments.words)
    clips = arguments.clips or (arguments.words.parent / "clips" if arguments.words.name == "corpus.jsonl" else arguments.words.parent)
    rows = []
    print("| mode | method | words | start (IQR) | end (IQR) | <= 80 ms | <= 200 ms |\n|---|---|---|---|---|---|---|")
    for mode in arguments.modes:
        task, rate_text = mode.split(":")
        rates = tuple(int(r) for r in rate_text.split(","))
        label = {"asr": f"ASR {rates[0]}", "vsr": f"VSR {rates[1]}", "avsr": f"AVSR {rates[0]},{rates[1]}"}[task]
        for method, words in (("even spread (baseline)", False), ("word timestamps", True)):
            line = row(label, method, measure(model, reference, clips, task, rates, words))
            rows.append(line)
            print(
                f"| {label} | {method} | {line['words']} | {line['start_ms']} ms ({line['start_iqr_ms']}) | "
                f"{line['end_ms']} ms ({line['end_iqr_ms']}) | {line['within_80']} % | {line['within_200']} % |",
                flush=True,
            )
    if arguments.json:
        arguments.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
