"""What `omniavsr transcribe` loses against `omniavsr eval` on the same held-out clips, per task and seed.

For each seed, synth-corpus makes --clips new held-out clips (the test split: never the bundled test clips),
prep-lips crops them for eval, and the demo model (or --model) decodes them three ways at one rate pair:
`eval` (the whole clip, cropped by prep-lips), `transcribe` as a user runs it (VAD chunk plan, face tracking
on the raw clip) and `transcribe --no-vad` (the whole clip as one window; VSR reads no audio, so its one
transcribe run is both). The table gives the corpus WER (lrs3 normaliser) of each; the default transcribe
should be within half a point of eval.

    .venv/bin/python benchmarks/transcribe_vs_eval.py WORK [--seeds 11 12] [--clips 120] [--code DIR]

WORK keeps the corpora, crops, eval results and transcripts: a rerun only makes and decodes what is missing.
--code runs the omniavsr_cli package of another checkout (e.g. `git archive COMMIT | tar -x -C DIR`) with the
same model, to measure before a change.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from omniavsr_cli.scoring.scorer import score_texts

REPO = Path(__file__).resolve().parents[1]
TASKS = ("asr", "vsr", "avsr")


def omniavsr(code: Path, *arguments: str) -> None:
    command = [sys.executable, "-m", "omniavsr_cli", *arguments]
    print("$ omniavsr " + " ".join(arguments), file=sys.stderr)
    subprocess.run(command, cwd=code, check=True, stdout=subprocess.DEVNULL)


def transcript_wer(folder: Path, clips: Path) -> float:
    references = sorted(clips.glob("*.txt"))
    hypotheses = [json.loads((folder / f"{r.stem}.json").read_text())["text"] for r in references]
    return score_texts(hypotheses, [r.read_text().strip() for r in references]).systems[0].wer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12])
    parser.add_argument("--clips", type=int, default=120)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--rates", default="4,2")
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose omniavsr_cli runs (default: this one)")
    arguments = parser.parse_args()
    work, code = arguments.work.resolve(), arguments.code.resolve()
    audio, video = arguments.rates.split(",")
    labels = {"asr": f"ASR {audio}", "vsr": f"VSR {video}", "avsr": f"AVSR {arguments.rates}"}
    rows = []
    for seed in arguments.seeds:
        corpus, crops, results = work / f"corpus-{seed}", work / f"rois-{seed}", work / f"eval-{seed}"
        if not (corpus / "corpus.jsonl").exists():
            omniavsr(code, "synth-corpus", str(corpus), "--clips", str(arguments.clips), "--seed", str(seed), "--split", "test")
        if not (crops / "manifest.csv").exists():
            omniavsr(code, "prep-lips", str(corpus / "clips"), "-o", str(crops), "--manifest", "--workers", "2")
        if not (results / "results.json").exists():
            omniavsr(
                code,
                "eval",
                str(crops / "manifest.csv"),
                "--model",
                arguments.model,
                "--tasks",
                ",".join(TASKS),
                "--rates",
                arguments.rates,
                "-o",
                str(results),
            )
        cells = {c["task"]: c["wer"] for c in json.loads((results / "results.json").read_text())["cells"]}
        for task in TASKS:
            wers = [cells[task]]
            # VSR reads no audio, so it has no speech to find: its chunks are the --no-vad windows either way.
            for vad in ("--vad", "--no-vad")[: 1 if task == "vsr" else 2]:
                out = work / f"transcribe-{seed}-{task}{vad.replace('--', '-')}"
                omniavsr(
                    code,
                    "transcribe",
                    str(corpus / "clips"),
                    "--model",
                    arguments.model,
                    "--mode",
                    task,
                    "--rates",
                    arguments.rates,
                    vad,
                    "-o",
                    str(out),
                    "-f",
                    "json",
                    "--skip-existing",
                    "--quiet",
                )
                wers.append(transcript_wer(out, corpus / "clips"))
            rows.append((seed, labels[task], wers[0], wers[1], wers[-1]))
    print("| seed | task | eval | transcribe | transcribe --no-vad | transcribe - eval |\n|---|---|---|---|---|---|")
    for seed, label, evaluated, default, whole in rows:
        print(f"| {seed} | {label} | {evaluated:.2%} | {default:.2%} | {whole:.2%} | {(default - evaluated) * 100:+.2f} |")


if __name__ == "__main__":
    main()
