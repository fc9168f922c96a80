"""``omniavsr synth-corpus OUT``: a synthetic GRID-style audio-visual corpus (espeak-ng speech, a talking face)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ._errors import ExitCode, reports_errors

HELP = (
    "Write a synthetic audio-visual corpus: GRID-style sentences (command colour preposition letter digit adverb) "
    "spoken by espeak-ng with a random voice, rate and pitch per clip, on a 25 fps talking face whose mouth follows "
    "the phonemes libespeak-ng reports. Every clip is a function of (--seed, its index): the same command gives "
    "the same corpus, and rerunning an interrupted one finishes it. --split test keeps to the tenth of the sentences "
    "that training never sees. OUT/clips holds <id>.mp4, <id>.txt and <id>.landmarks.npz; then\n\n"
    "  omniavsr prep-lips OUT/clips -o ROIS --manifest --detector landmarks:OUT/clips\n\n"
    "gives a training manifest (or leave out --detector to find the face with FaceMesh, as for real video). "
    "--faces 2 puts two faces side by side (448x224 at the default --size) and makes them take turns, sentence by "
    "sentence; the one not heard moves its lips a little, or with --distractor talking mouths other sentences; "
    "--offscreen makes a third, unseen voice say everything. corpus.jsonl then says who says each sentence (speakers).\n\n"
    "Needs libespeak-ng: pip install 'omniavsr\\[synth]' (or apt-get install espeak-ng); omniavsr doctor says which one it uses.\n\n"
    "Exit codes: 0 done; 2 bad arguments or OUT unusable; 5 libespeak-ng missing; 130 interrupted (rerun to finish). "
    "Guide: docs/synth-corpus.md."
)


@reports_errors
def synth_corpus(
    output: Annotated[Path, typer.Argument(metavar="OUT", help="Corpus directory (created; rerun to finish it).", show_default=False)],
    clips: Annotated[int, typer.Option(min=1, help="Number of clips.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed: clip i of a seed is always the same clip.")] = 0,
    split: Annotated[str, typer.Option(help="Sentences from train, test (the held-out tenth) or all.")] = "train",
    sentences: Annotated[int, typer.Option(min=1, help="Sentences per clip, with a pause between them.")] = 1,
    snr: Annotated[
        float | None, typer.Option(help="Mix OUT/babble.wav into every clip at this SNR in dB (default: clean).", show_default=False)
    ] = None,
    size: Annotated[int, typer.Option(min=96, help="Frame width and height in pixels (of each face's half with --faces 2).")] = 224,
    faces: Annotated[int, typer.Option(min=1, max=2, help="Faces per clip; 2: side by side, taking turns sentence by sentence.")] = 1,
    distractor: Annotated[
        str, typer.Option(help="With --faces 2, what the face not heard does: idle (small lip movements) or talking (mouths other text).")
    ] = "idle",
    offscreen: Annotated[bool, typer.Option("--offscreen", help="With --faces 2: an unseen third voice says every sentence.")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Clips made in parallel (processes).")] = 2,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
) -> int:
    from ..errors import Interrupted
    from ..synthetic.corpus import CorpusOptions, generate

    options = CorpusOptions(
        clips=clips,
        seed=seed,
        split=split,
        sentences=sentences,
        snr_db=snr,
        size=size,
        faces=faces,
        distractor=distractor,
        offscreen=offscreen,
    )
    made = 0

    def on_clip(record: dict) -> None:
        nonlocal made
        made += 1
        if not quiet and sys.stderr.isatty():
            print(f"\rsynth-corpus: {made} clips made", end="", file=sys.stderr, flush=True)

    try:
        result = generate(output, options, workers=workers, on_clip=on_clip)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: {made} new clips are in {output}; rerun the same command to finish") from None
    if not quiet:
        print(
            ("\r" if sys.stderr.isatty() else "") + f"synth-corpus: {result.made} clips made, {result.skipped} already there; "
            f"{output / 'corpus.jsonl'}",
            file=sys.stderr,
        )
    return ExitCode.OK
