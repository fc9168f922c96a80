"""``omniavsr align-heads MANIFEST --word-times PATH``: find the LLM heads that time words, and store them with the model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ._common import ProgressBar, check_device, check_dtype, load
from ._errors import ExitCode, error_line, message, reports_errors, warning_line

HELP = (
    "Find which of the model's LLM attention heads time words best, on labelled clips with known word times, and "
    "store them in the model's config.json (and its checksum in checksums.json), where word timings read them. "
    "MANIFEST is what prep-lips --manifest writes; --word-times is an LRS3 .txt or a directory of them, a "
    "synth-corpus corpus.jsonl or a JSON of word times, matched to the clips by id. Each clip in each cell gets "
    "one pass of the model over its reference transcript; each head alone is scored, then a set is grown one "
    "head at a time while the error (the mean over the cells of the median start and end error) falls. Prints "
    "every head's figures and the chosen set.\n\n"
    "Exit codes: 0 heads found (stored unless --dry-run); 3 some clips could not be read (the others were used); "
    "4 no clip could be aligned in a cell; 2 bad arguments, no word times, no clip with word times, or a model "
    "folder that cannot be written; 5 model unavailable or damaged. Guide: docs/align-heads.md."
)


def parse_cells(values: list[str]) -> list[tuple[str, tuple[int | None, int | None]]]:
    """``asr:4,vsr:2,avsr:4,2`` (comma-separated, or repeated) -> [(task, (audio rate, video rate))]: a part
    with a colon starts a cell, a bare number adds a rate to it; ASR takes an audio rate, VSR a video rate."""
    groups: list[list[str]] = []
    for value in values:
        for part in (part.strip() for part in value.split(",")):
            if ":" in part or not groups:
                groups.append([])
            groups[-1].append(part)
    cells = []
    for group in groups:
        task, _, first = group[0].partition(":")
        task, numbers = task.strip().lower(), [first, *group[1:]]
        wanted = {"asr": 1, "vsr": 1, "avsr": 2}.get(task)
        if wanted is None or len(numbers) != wanted or not all(number.strip().isdigit() for number in numbers):
            raise InputError(
                f"--cells {','.join(group)}: give each cell as asr:AUDIO, vsr:VIDEO or avsr:AUDIO,VIDEO (e.g. asr:4,vsr:2,avsr:4,2)"
            )
        rates = [int(number) for number in numbers]
        cells.append((task, {"asr": (rates[0], None), "vsr": (None, rates[0]), "avsr": (rates[0], rates[-1])}[task]))
    return cells


def _spread(items: list, count: int) -> list:
    """``count`` of ``items`` spread evenly over the list (a manifest sorted by speaker keeps its variety)."""
    if len(items) <= count:
        return items
    return [items[round(k * (len(items) - 1) / (count - 1))] for k in range(count)] if count > 1 else items[:1]


class _StageBars:
    """A progress bar per stage of calibrate_heads (passes, then head sets), each replacing the one before."""

    def __init__(self, enabled: bool):
        self.enabled, self.stage, self.bar, self.done = enabled, None, None, 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.close()
            label = {"passes": "align-heads: passes", "sets": "align-heads: head sets"}[stage]
            self.stage, self.bar, self.done = stage, ProgressBar(label, total, self.enabled).__enter__(), 0
        self.bar.advance(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def render(report, out) -> None:
    """The figures as a Markdown table: per cell the median error (ms) and the shares within 80 and 200 ms (%)."""
    header = ["heads", *(cell.label for cell in report.cells), "error"]
    rows = []

    def row(name: str, heads) -> None:
        cells = [f"{_milliseconds(f.median)} ms {f.within_80ms * 100:.0f}/{f.within_200ms * 100:.0f} %" for f in heads.figures]
        rows.append([name, *cells, f"{_milliseconds(heads.error)} ms"])

    for single in report.singles:
        row(_names(single.heads), single)
    row(f"default: upper half ({len(report.default.heads)})", report.default)
    row(f"all {len(report.everything.heads)}", report.everything)
    for step in report.steps:
        row(f"greedy: {_names(step.heads)}", step)
    lines = [header, *rows]
    widths = [max(len(line[k]) for line in lines) for k in range(len(header))]
    out.write("| " + " | ".join(text.ljust(width) for text, width in zip(header, widths)) + " |\n")
    out.write("|" + "|".join("-" * (width + 2) for width in widths) + "|\n")
    for line in rows:
        out.write(
            "| " + " | ".join(text.ljust(width) if n == 0 else text.rjust(width) for n, (text, width) in enumerate(zip(line, widths)))
        )
        out.write(" |\n")


def _names(heads) -> str:
    return ", ".join(f"{layer}.{head}" for layer, head in heads)


@reports_errors
def align_heads(
    manifest: Annotated[
        Path,
        typer.Argument(
            metavar="MANIFEST", help="Labelled clips: manifest.csv / manifest.jsonl (prep-lips --manifest).", show_default=False
        ),
    ],
    word_times: Annotated[
        Path,
        typer.Option(
            help="Reference word times: an LRS3 .txt or a directory of them, a synth-corpus corpus.jsonl, or a JSON {id: [{word, start, end}]}.",
            show_default=False,
        ),
    ],
    model: Annotated[str, typer.Option(help="Installed model name or model directory (its config.json takes the heads).")] = "omni-avsr-st",
    root: Annotated[
        Path | None, typer.Option(help="Folder the manifest's paths start from (default: the manifest's grandparent).", show_default=False)
    ] = None,
    cells: Annotated[
        list[str] | None,
        typer.Option(
            help="Tasks and rates to calibrate on, e.g. asr:4,vsr:2,avsr:4,2 (default: every task at the finest and the coarsest rates).",
            show_default=False,
        ),
    ] = None,
    max_clips: Annotated[int, typer.Option(min=1, help="Use at most this many clips with word times, spread over the manifest.")] = 200,
    max_heads: Annotated[int, typer.Option(min=1, help="The most heads the set may grow to.")] = 16,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the heads, store nothing.")] = False,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N (default: cuda when available).", show_default=False)] = None,
    dtype: Annotated[str, typer.Option(help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or fp32.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
) -> int:
    from .. import alignment
    from ..model.omni import Clip
    from ..model.transforms import video_input
    from ..scoring.word_times import read_word_times
    from ..training.data import load_example
    from ..training.evaluate import read_eval_set

    torch_dtype = check_dtype(dtype)
    check_device(device)
    wanted = parse_cells(cells) if cells else None
    times = read_word_times(word_times)
    eval_set = read_eval_set(manifest, root)
    matches = alignment.match_word_times([example.id for example in eval_set.examples], times)
    if not matches:
        raise InputError(
            f"{word_times}: none of the {len(eval_set.examples)} clips of {manifest} has word times here (clip ids look like "
            f"{eval_set.examples[0].id!r}, word-times ids like {next(iter(times))!r}); give the word times of these clips",
            code="E_ID_MISMATCH",
        )
    fitting = [
        example
        for example in eval_set.examples
        if example.id in matches and alignment.word_times_fit(times[matches[example.id]], example.frames)
    ]
    if len(fitting) < len(matches):
        warning_line(f"{len(matches) - len(fitting)} clips left out: their word times run past the clip's end (another clip's times?)")
    if not fitting:
        raise InputError(
            f"{word_times}: no clip of {manifest} can hold its word times; give the word times of these clips", code="E_ID_MISMATCH"
        )
    loaded = load(model, device, torch_dtype, quiet, command="align-heads")
    if not dry_run:  # before the passes, not after them
        alignment.check_can_store(loaded.directory)
    config = loaded.config
    chosen_cells = (
        alignment.default_cells(config)
        if wanted is None
        else [(task, (audio or config.audio_rates[0], video or config.video_rates[0])) for task, (audio, video) in wanted]
    )

    def loader(example):
        def load_clip() -> Clip:
            audio, crops = load_example(example)
            return Clip(audio, video_input(crops))

        return load_clip

    usable = _spread(fitting, max_clips)
    examples = [alignment.LabelledClip(example.id, example.text, loader(example)) for example in usable]
    by_clip = {example.id: times[matches[example.id]] for example in usable}
    bars = _StageBars(sys.stderr.isatty() and not quiet)
    try:
        report = alignment.calibrate_heads(loaded, examples, by_clip, chosen_cells, max_heads, on_progress=bars)
    except InputError as error:
        if error.code != "E_NO_CLIPS":
            raise
        error_line(f"{manifest}: {message(error)}")
        return ExitCode.ALL_FAILED
    finally:
        bars.close()

    for where, why in (eval_set.skipped + report.unreadable)[:10]:
        warning_line(f"skipped {where}: {why}")
    if len(eval_set.skipped + report.unreadable) > 10:
        warning_line(f"... and {len(eval_set.skipped + report.unreadable) - 10} more clips that could not be read")
    render(report, sys.stdout)
    print(
        f"\nchosen: {_names(report.chosen)} ({_milliseconds(report.steps[-1].error)} ms; default heads {_milliseconds(report.default.error)} ms)"
    )
    if not dry_run:
        path = alignment.store_heads(loaded.directory, report.chosen)
        print(f"stored in {path}")
    if not quiet:
        without = len(eval_set.examples) - len(matches)
        print(
            f"align-heads: {report.clips} clips in {len(report.cells)} cells; {without} without word times, "
            f"{len(report.skipped)} clip-cells skipped (too long or too short), {len(report.unreadable)} unreadable"
            + ("; dry run: nothing stored" if dry_run else ""),
            file=sys.stderr,
        )
    return ExitCode.PARTIAL if report.unreadable else ExitCode.OK
