"""Rendering a :class:`ScoreReport`: summary, per-utterance, sclite-style alignment, and JSON.

Human reports are rich tables on a terminal and plain, grep-friendly text when piped; both come from the
same rows. The JSON layout is described by ``score-report.schema.json`` beside this file.
"""

from __future__ import annotations

import json
from typing import TextIO

from .. import __version__
from .measures import AlignedUtterance, ConfidenceInterval, EditCounts
from .scorer import ScoreReport, Source, SystemScore

REPORTS = ("summary", "utt", "align", "json")
JSON_SCHEMA_ID = "omniavsr.score.v1"


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.2f} %"


def _describe(source: Source) -> str:
    return f"{source.path} ({source.format}, {source.utterances} utterances)"


def _interval_text(interval: ConfidenceInterval) -> str:
    return f"{_percent(interval.low)} .. {_percent(interval.high)} (bootstrap, {interval.samples} resamples, seed {interval.seed})"


def summary_rows(report: ScoreReport) -> list[tuple[str, str]]:
    rows = [("reference", _describe(report.reference))]
    compare = len(report.systems) > 1
    labels = ["hyp", "hyp2"] if compare else [""]
    for index, system in enumerate(report.systems):
        role = "hypothesis" if index == 0 else "compared with"
        rows.append((f"{role} ({labels[index]})" if compare else role, _describe(system.source)))
    scored = len(report.systems[0].utterances)
    rows += [
        ("paired by", "utterance id" if report.pairing == "id" else "line"),
        ("normaliser", f"{report.normalizer.name}: {report.normalizer.rules}"),
        (
            "scored",
            f"{scored} utterances, {report.systems[0].words.reference_length} reference words"
            + (f", {report.empty_references} with an empty reference" if report.empty_references else ""),
        ),
    ]
    if report.missing or report.extra:
        rows.append(("left out", f"{len(report.missing)} reference ids without hypothesis, {len(report.extra)} extra hypothesis ids"))
    for label, system in zip(labels, report.systems):
        prefix = f"{label} " if compare else ""
        words, chars = system.words, system.characters
        rows.append(
            (
                f"{prefix}WER",
                f"{_percent(words.rate)}  ({words.errors} errors / {words.reference_length} words: "
                f"S {words.substitutions}, D {words.deletions}, I {words.insertions}, H {words.hits})",
            )
        )
        if system.interval:
            rows.append((f"{prefix}WER 95% CI", _interval_text(system.interval)))
        rows.append(
            (
                f"{prefix}CER",
                f"{_percent(chars.rate)}  ({chars.errors} errors / {chars.reference_length} characters)",
            )
        )
        rows.append(
            (
                f"{prefix}mean utterance WER",
                f"{_percent(system.mean_utterance_wer)}  (average over {system.mean_utterance_count} utterances "
                "with a non-empty reference; not the corpus WER)",
            )
        )
    if report.comparison:
        comparison = report.comparison
        delta = "n/a" if comparison.delta is None else f"{comparison.delta * 100:+.2f} WER points"
        rows.append(("difference", f"{delta} (hyp2 minus hyp)"))
        if comparison.interval:
            interval = comparison.interval
            rows.append(("difference 95% CI", f"{interval.low * 100:+.2f} .. {interval.high * 100:+.2f} WER points"))
            rows.append(
                ("paired bootstrap", f"p = {comparison.p_value:.4f} (two-sided, {interval.samples} resamples, seed {interval.seed})")
            )
    return rows


def _render_rows(rows: list[tuple[str, str]], out: TextIO, rich_output: bool, title: str | None = None) -> None:
    if rich_output:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for label, value in rows:
            table.add_row(label, value)
        Console(file=out).print(table)
    else:
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            out.write(f"{label + ':':<{width + 1}} {value}\n")


def render_summary(report: ScoreReport, out: TextIO, rich_output: bool = False) -> None:
    _render_rows(summary_rows(report), out, rich_output, title="omniavsr score")


_UTT_COLUMNS = ("id", "errors", "ref_words", "sub", "del", "ins", "wer", "reference", "hypothesis")


def render_utterances(report: ScoreReport, out: TextIO, rich_output: bool = False) -> None:
    """One line per utterance, most errors first (ties keep reference order)."""
    for system in report.systems:
        ordered = sorted(system.utterances, key=lambda u: -u.counts.errors)
        rows = [
            (
                u.id,
                str(u.counts.errors),
                str(u.counts.reference_length),
                str(u.counts.substitutions),
                str(u.counts.deletions),
                str(u.counts.insertions),
                _percent(u.counts.rate),
                " ".join(u.reference),
                " ".join(u.hypothesis),
            )
            for u in ordered
        ]
        title = f"{system.source.path} (normaliser {report.normalizer.name})"
        if rich_output:
            from rich.console import Console
            from rich.table import Table

            table = Table(*_UTT_COLUMNS, title=title)
            for row in rows:
                table.add_row(*row)
            Console(file=out).print(table)
        else:
            out.write(f"# {title}\n" + "\t".join(_UTT_COLUMNS) + "\n")
            out.writelines("\t".join(row) + "\n" for row in rows)


def alignment_lines(utterance: AlignedUtterance) -> list[str]:
    """sclite 'pra' style: REF and HYP columns aligned, *** for a missing word, S/D/I under each error."""
    ref_cells, hyp_cells, marks = [], [], []
    markers = {"substitute": "S", "delete": "D", "insert": "I", "equal": ""}
    for chunk in utterance.alignment:
        ref = utterance.reference[chunk.ref_start_idx : chunk.ref_end_idx]
        hyp = utterance.hypothesis[chunk.hyp_start_idx : chunk.hyp_end_idx]
        length = max(len(ref), len(hyp))
        ref_cells += ref or ["***"] * length
        hyp_cells += hyp or ["***"] * length
        marks += [markers[chunk.type]] * length
    widths = [max(len(r), len(h), len(m)) for r, h, m in zip(ref_cells, hyp_cells, marks)]

    def line(label: str, cells: list[str]) -> str:
        return (label + " ".join(cell.ljust(width) for cell, width in zip(cells, widths))).rstrip()

    counts = utterance.counts
    return [
        f"id: ({utterance.id})",
        f"Scores: (#C #S #D #I) {counts.hits} {counts.substitutions} {counts.deletions} {counts.insertions}",
        line("REF:  ", ref_cells),
        line("HYP:  ", hyp_cells),
        line("Eval: ", marks),
        "",
    ]


def render_alignment(report: ScoreReport, out: TextIO, rich_output: bool = False) -> None:
    for system in report.systems:
        out.write(f"# {system.source.path} against {report.reference.path} (normaliser {report.normalizer.name})\n\n")
        for utterance in system.utterances:
            out.write("\n".join(alignment_lines(utterance)) + "\n")


def _counts_dict(counts: EditCounts, unit: str) -> dict:
    return {
        "value": counts.rate,
        "errors": counts.errors,
        f"reference_{unit}": counts.reference_length,
        "hits": counts.hits,
        "substitutions": counts.substitutions,
        "deletions": counts.deletions,
        "insertions": counts.insertions,
    }


def _interval_dict(interval: ConfidenceInterval | None) -> dict | None:
    if interval is None:
        return None
    return {"low": interval.low, "high": interval.high, "level": interval.level, "samples": interval.samples, "seed": interval.seed}


def _source_dict(source: Source) -> dict:
    return {"path": source.path, "format": source.format, "utterances": source.utterances}


def _system_dict(system: SystemScore) -> dict:
    return {
        "hypothesis": _source_dict(system.source),
        "wer": {**_counts_dict(system.words, "words"), "ci": _interval_dict(system.interval)},
        "cer": _counts_dict(system.characters, "characters"),
        "mean_utterance_wer": {"value": system.mean_utterance_wer, "utterances": system.mean_utterance_count},
        "utterances": [
            {
                "id": u.id,
                "reference": " ".join(u.reference),
                "hypothesis": " ".join(u.hypothesis),
                "reference_words": u.counts.reference_length,
                "errors": u.counts.errors,
                "hits": u.counts.hits,
                "substitutions": u.counts.substitutions,
                "deletions": u.counts.deletions,
                "insertions": u.counts.insertions,
                "wer": u.counts.rate,
            }
            for u in system.utterances
        ],
    }


def report_dict(report: ScoreReport) -> dict:
    comparison = None
    if report.comparison:
        comparison = {
            "method": "paired bootstrap, two-sided",
            "delta_wer": report.comparison.delta,
            "ci": _interval_dict(report.comparison.interval),
            "p_value": report.comparison.p_value,
        }
    return {
        "schema": JSON_SCHEMA_ID,
        "tool": {"name": "omniavsr", "version": __version__},
        "reference": _source_dict(report.reference),
        "pairing": report.pairing,
        "normalizer": {"name": report.normalizer.name, "rules": report.normalizer.rules},
        "scored_utterances": len(report.systems[0].utterances),
        "empty_references": report.empty_references,
        "left_out": {"missing_in_hypothesis": report.missing, "extra_in_hypothesis": report.extra},
        "systems": [_system_dict(system) for system in report.systems],
        "comparison": comparison,
        "warnings": report.warnings,
    }


def render_json(report: ScoreReport, out: TextIO, rich_output: bool = False) -> None:
    # dumps (one C-encoder pass) is several times faster than dump's chunked writes on large reports.
    out.write(json.dumps(report_dict(report), ensure_ascii=False, indent=2 if rich_output else None) + "\n")


RENDERERS = {
    "summary": render_summary,
    "utt": render_utterances,
    "align": render_alignment,
    "json": render_json,
}
