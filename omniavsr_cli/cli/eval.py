"""``omniavsr eval MANIFEST``: WER of a labelled set for every task x rate pair, as the paper's Table I."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ._common import ProgressBar, ShardOption, check_device, check_dtype, load, parse_batch_size, parse_rates, parse_shard
from ._errors import ExitCode, error_line, reports_errors, warning_line

HELP = (
    "Evaluate a model on a labelled set (the manifest.csv or manifest.jsonl prep-lips writes, or the official "
    "5-column CSV) in every task x rate pair it was trained with: ASR per audio rate, VSR per video rate, AVSR "
    "per pair, and their average, as the Omni-AVSR paper's Table I. WER in % is the corpus WER (word edits / "
    "reference words) after the lrs3 normaliser. Each clip is loaded once; decoding is batched and "
    "deterministic (beam search). -o DIR writes one hypothesis file per cell and reference.jsonl, which "
    "`omniavsr score` re-scores, plus results.json.\n\n"
    "Exit codes: 0 every clip evaluated; 3 some clips skipped (unreadable or missing; listed on stderr); 4 none "
    "could be read; 2 bad arguments; 5 model unavailable; 6 out of memory. Guide: docs/eval.md."
)


def _tasks(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(task.strip().lower() for value in values for task in value.split(",") if task.strip()))


@reports_errors
def evaluate(
    manifest: Annotated[
        Path,
        typer.Argument(
            metavar="MANIFEST", help="Labelled clips: manifest.csv / manifest.jsonl (prep-lips --manifest).", show_default=False
        ),
    ],
    model: Annotated[str, typer.Option(help="Installed model name or model directory.")] = "omni-avsr-st",
    root: Annotated[
        Path | None, typer.Option(help="Folder the manifest's paths start from (default: the manifest's grandparent).", show_default=False)
    ] = None,
    tasks: Annotated[
        list[str] | None,
        typer.Option(help="Only these tasks: asr, vsr, avsr, as a comma list or repeated (default: all).", show_default=False),
    ] = None,
    rates: Annotated[
        list[str] | None,
        typer.Option(help="Only the rates of these audio,video pairs, e.g. --rates 4,2 --rates 16,5 (default: all).", show_default=False),
    ] = None,
    snr: Annotated[
        float | None, typer.Option(help="Noisy evaluation: mix --noise into the audio at this SNR in dB.", show_default=False)
    ] = None,
    noise: Annotated[
        list[Path] | None, typer.Option(help="Noise recording for --snr (repeat for several; one is drawn per clip).", show_default=False)
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the noise draws (and of --sample).")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N (default: cuda when available).", show_default=False)] = None,
    dtype: Annotated[str, typer.Option(help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or fp32.")] = "auto",
    batch_size: Annotated[str, typer.Option(help="Clips per model call, or auto (pack by length, halve on out-of-memory).")] = "auto",
    beams: Annotated[int, typer.Option(min=1, help="Beam width (official: 15).")] = 15,
    sample: Annotated[
        bool, typer.Option("--sample", help="Sample within the beams as the official evaluation did (temperature 0.6, top-p 0.9).")
    ] = False,
    guards: Annotated[
        bool, typer.Option("--guards/--no-guards", help="Retry repeating or runaway transcripts (the official evaluation does not).")
    ] = False,
    cache: Annotated[
        Path | None, typer.Option(help="Keep decoded clips here so later evaluations of the set skip decoding.", show_default=False)
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write per-cell hypotheses, reference.jsonl and results.json here.", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON instead of the table.")] = False,
    shard: ShardOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
) -> int:
    from ..decoding import DecodingOptions
    from ..inputs import shard as shard_of
    from ..training.evaluate import TASKS, EvalOptions, EvalSet, plan_cells, read_eval_set, render_table, write_results
    from ..training.evaluate import evaluate as run_eval

    torch_dtype = check_dtype(dtype)
    check_device(device)
    part = parse_shard(shard)
    if output is not None and output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a directory; choose another -o")
    if output is not None and part is not None:
        output = output / part.name  # each shard's results, hypotheses and references in a folder of its own
    options = EvalOptions(
        tasks=_tasks(tasks) if tasks else TASKS,
        rates=tuple(parse_rates(value) for value in rates) if rates else None,
        snr_db=snr,
        noise_files=tuple(noise or ()),
        seed=seed,
        decoding=DecodingOptions(num_beams=beams, sample=sample, seed=seed if sample else None),
        guards=guards,
        batch_size=parse_batch_size(batch_size),
        cache=cache,
    )
    eval_set = read_eval_set(manifest, root)
    if part is not None:
        given = len(eval_set.examples)
        eval_set = EvalSet(
            eval_set.path,
            shard_of(eval_set.examples, part.index, part.count, key=lambda example: example.id),
            shard_of(eval_set.skipped, part.index, part.count, key=lambda skipped: skipped[0]),  # each skipped line in one shard
        )
        if not eval_set.examples and not eval_set.skipped:
            print(f"eval: shard {part.index}/{part.count} holds none of the {given} clips; nothing to do", file=sys.stderr)
            return ExitCode.OK
    loaded = load(model, device, torch_dtype, quiet, command="eval")
    total = len(eval_set.examples) * len(plan_cells(loaded.config, options))
    with ProgressBar("eval", total, sys.stderr.isatty() and not quiet, "clips x cells") as bar:
        result = run_eval(loaded, eval_set, options, on_progress=bar.advance)

    for where, why in result.skipped[:10]:
        warning_line(f"skipped {where}: {why}")
    if len(result.skipped) > 10:
        warning_line(f"... and {len(result.skipped) - 10} more skipped clips (all listed in the JSON results)")
    if not result.references:
        error_line(f"{manifest}: none of its {len(result.skipped)} clips could be read; see the warnings above")
        return ExitCode.ALL_FAILED
    if output is not None:
        try:
            write_results(result, output)
        except OSError as error:
            raise InputError(f"{output}: cannot write here ({error.strerror or error}); choose another -o") from None
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        render_table(result, sys.stdout, sys.stdout.isatty())
    if not quiet:
        summary = f"eval: {len(result.references)} clips in {len(result.cells)} cells in {result.seconds:.1f} s"
        summary += f", {len(result.skipped)} skipped" if result.skipped else ""
        print(summary + (f"; outputs in {output}" if output is not None else ""), file=sys.stderr)
    return ExitCode.PARTIAL if result.skipped else ExitCode.OK
