"""``omniavsr score HYP REF``: comparable WER/CER with the normaliser and aggregation named in the report."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..scoring.formats import FORMATS
from ..scoring.normalizers import NORMALIZERS
from ..scoring.reports import REPORTS
from ._errors import reports_errors, warning_line

HELP = (
    "Score hypothesis transcripts against references: corpus WER (total edits / total reference words), CER, "
    "and the mean utterance WER, labelled separately.\n\n"
    "Formats are detected per file: plain text, Kaldi 'utt-id text', sclite trn 'text (utt-id)', omniavsr or "
    "whisper JSON/JSONL, SRT, VTT; a text file whose lines start with the ids of the Kaldi file it is scored "
    "with is read as Kaldi. Utterances are paired by id when both sides have ids, else by line; blank "
    "lines are utterances and are never dropped.\n\n"
    "Exit codes: 0 scored; 2 bad input (missing file, not UTF-8, unparseable line, repeated id, id or count "
    "mismatch, an utterance too long to align)."
)


@reports_errors
def score(
    hyp: Annotated[str, typer.Argument(metavar="HYP", help="Hypothesis transcript ('-' reads standard input).", show_default=False)],
    ref: Annotated[str, typer.Argument(metavar="REF", help="Reference transcript ('-' reads standard input).", show_default=False)],
    format: Annotated[
        str, typer.Option("--format", "-F", help=f"Format of HYP (and REF unless --ref-format): auto, {', '.join(FORMATS)}.")
    ] = "auto",
    ref_format: Annotated[str | None, typer.Option("--ref-format", help="Format of REF when it differs from HYP's.")] = None,
    normalizer: Annotated[
        str, typer.Option("--normalizer", "-n", help=f"Text normaliser: {', '.join(NORMALIZERS)}. lrs3 = the Omni-AVSR evaluation.")
    ] = "lrs3",
    report: Annotated[str, typer.Option("--report", "-r", help=f"Report: {', '.join(REPORTS)} (json goes to stdout).")] = "summary",
    allow_missing: Annotated[
        bool, typer.Option("--allow-missing", help="Score the ids both sides share instead of failing on missing or extra ids.")
    ] = False,
    join: Annotated[bool, typer.Option("--join", help="Score each file as one utterance (e.g. subtitles of a whole talk).")] = False,
    ci: Annotated[bool, typer.Option("--ci", help="Add a bootstrap 95% confidence interval of the corpus WER.")] = False,
    compare: Annotated[
        str | None, typer.Option("--compare", metavar="HYP2", help="Score a second system on the same references and test the difference.")
    ] = None,
    bootstrap_samples: Annotated[
        int, typer.Option("--bootstrap-samples", min=100, help="Bootstrap resamples for --ci and --compare.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap resampling (results are reproducible).")] = 0,
) -> int:
    from ..errors import UsageError
    from ..scoring import RENDERERS
    from ..scoring import score as score_files

    if report not in REPORTS:
        raise UsageError(f"unknown report {report!r}; use one of: {', '.join(REPORTS)}")
    result = score_files(
        hyp,
        ref,
        compare=compare,
        hypothesis_format=format,
        reference_format=ref_format,
        normalizer=normalizer,
        allow_missing=allow_missing,
        join=join,
        confidence=ci,
        bootstrap_samples=bootstrap_samples,
        seed=seed,
    )
    for warning in result.warnings:
        warning_line(warning)
    RENDERERS[report](result, sys.stdout, sys.stdout.isatty())
    return 0
