"""`omniavsr eval`: the WER of a labelled set for every task x rate pair, laid out as the paper's Table I.

Clips are loaded (and, with an SNR, mixed with noise) once each, in groups of at most ``group_frames``
video frames so memory stays bounded whatever the set's size; every cell then decodes the group in batches
(decoding.BatchDecoder). A cell's WER is the corpus WER of the Omni-AVSR evaluation: total word edits over
total reference words after the ``lrs3`` normaliser (lowercase, split on whitespace), computed by the
scoring package exactly as ``omniavsr score`` computes it. Avg is the mean of the cells.

    for group in groups(eval_set):                        # load + noise each clip once
        for cell in cells:                                # ASR 4, ASR 16, VSR 2, ..., AV 16,5
            hypotheses[cell] += decode(group, cell)       # batched (the decoder keeps budgets apart)
    wer[cell] = score(hypotheses[cell], references)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..atomic import write_text_atomic
from ..decoding import BatchDecoder, BatchLimits, DecodingOptions
from ..errors import InputError, UsageError, parameter
from ..model.config import TASKS
from ..model.loading import LoadedModel, model_description
from ..model.omni import Clip
from ..model.transforms import video_input
from ..scoring import EditCounts, get_normalizer, score_texts
from .augment import NoiseBank, check_snr
from .data import BadExample, Example, check_files, clip_cache, load_example, read_manifest

TASK_LABELS = {"asr": "ASR", "vsr": "VSR", "avsr": "AV"}
NORMALIZER = "lrs3"
REFERENCE_FILE = "reference.jsonl"
RESULTS_FILE = "results.json"
JSON_SCHEMA_ID = "omniavsr.eval.v1"


@dataclass(frozen=True)
class EvalOptions:
    tasks: tuple[str, ...] = TASKS
    rates: tuple[tuple[int, int], ...] | None = None  # (audio, video) pairs; None: every pair the model has
    snr_db: float | None = None  # noisy evaluation: noise_files mixed in at this SNR
    noise_files: tuple[Path, ...] = ()
    seed: int = 0  # which noise (and where in it) each clip gets
    decoding: DecodingOptions = DecodingOptions()
    guards: bool = False  # off: the official evaluation neither retries nor flags transcripts
    batch_size: int | None = None  # None: pack by frames, halve on out-of-memory
    batch_frames: int = 12_000
    group_frames: int = 10_000  # clips held at once; their model inputs take about 31 KB per frame
    cache: Path | None = None  # decoded clips kept here for later evaluations (data.load_example)

    def __post_init__(self) -> None:
        unknown = [task for task in self.tasks if task not in TASKS]
        if unknown or not self.tasks:
            raise UsageError(f"{parameter('tasks')} {','.join(unknown) or '(none)'}: choose from {', '.join(TASKS)}")
        if self.snr_db is not None:
            check_snr(self.snr_db)
        if self.snr_db is not None and not self.noise_files:
            raise UsageError(
                f"{parameter('snr_db')} {self.snr_db:g} needs noise to mix in: add {parameter('noise_files')} FILE (e.g. a babble noise recording)"
            )
        if self.noise_files and self.snr_db is None:
            raise UsageError(
                f"{parameter('noise_files')} is mixed in only at a fixed SNR: add {parameter('snr_db')} DB (e.g. {parameter('snr_db')} 0)"
            )
        for file in self.noise_files:
            if not Path(file).is_file():
                raise InputError(f"{file}: no such noise file; check the path", code="E_NOT_FOUND")


@dataclass(frozen=True)
class Cell:
    """One column of the table: a task at one rate (ASR: audio, VSR: video, AVSR: both)."""

    task: str
    audio_rate: int | None
    video_rate: int | None

    @property
    def label(self) -> str:
        rates = ",".join(str(rate) for rate in (self.audio_rate, self.video_rate) if rate is not None)
        return f"{TASK_LABELS[self.task]} {rates}"

    @property
    def name(self) -> str:
        """The cell as a file stem: asr_4, vsr_2, avsr_4_2."""
        return "_".join([self.task, *(str(rate) for rate in (self.audio_rate, self.video_rate) if rate is not None)])

    @property
    def uses_audio(self) -> bool:
        return self.task != "vsr"

    def model_rates(self, config) -> tuple[int, int]:
        # The model takes a pair for every task; the rate of the unused stream does not matter.
        return (
            self.audio_rate if self.audio_rate is not None else config.audio_rates[0],
            self.video_rate if self.video_rate is not None else config.video_rates[0],
        )


def plan_cells(config, options: EvalOptions) -> list[Cell]:
    """The cells in the paper's order: ASR per audio rate, VSR per video rate, AVSR per pair (audio outer).

    With ``options.rates``, only the rates in those pairs (ASR, VSR) and the pairs themselves (AVSR).
    """
    pairs = {config.check_rates(pair) for pair in options.rates} if options.rates else None
    audio = [a for a in config.audio_rates if pairs is None or any(a == p[0] for p in pairs)]
    video = [v for v in config.video_rates if pairs is None or any(v == p[1] for p in pairs)]
    cells = {
        "asr": [Cell("asr", a, None) for a in audio],
        "vsr": [Cell("vsr", None, v) for v in video],
        "avsr": [Cell("avsr", a, v) for a in config.audio_rates for v in config.video_rates if pairs is None or (a, v) in pairs],
    }
    return [cell for task in TASKS if task in options.tasks for cell in cells[task]]


# ------------------------------------------------------------------------------------------- results


@dataclass
class CellResult:
    cell: Cell
    words: EditCounts  # corpus edit counts after the lrs3 normaliser
    without_audio: int  # clips left out of this cell because they have no audio (ASR, AVSR)
    seconds: float  # time spent decoding
    hypotheses: list[tuple[str, str]]  # (utterance id, transcript), in manifest order

    @property
    def wer(self) -> float | None:
        return self.words.rate

    @property
    def utterances(self) -> int:
        return len(self.hypotheses)

    def to_dict(self) -> dict:
        words = self.words
        return {
            "label": self.cell.label,
            "name": self.cell.name,
            "task": self.cell.task,
            "audio_rate": self.cell.audio_rate,
            "video_rate": self.cell.video_rate,
            "wer": words.rate,
            "errors": words.errors,
            "reference_words": words.reference_length,
            "substitutions": words.substitutions,
            "deletions": words.deletions,
            "insertions": words.insertions,
            "hits": words.hits,
            "utterances": self.utterances,
            "without_audio": self.without_audio,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class EvalResult:
    manifest: str
    model: dict  # model.loading.model_description: name, path, sha256, variant
    options: EvalOptions
    cells: list[CellResult]
    references: list[tuple[str, str]]  # (utterance id, text) of every evaluated clip
    skipped: list[tuple[str, str]]  # (where, why): unusable manifest lines, missing files, unreadable clips
    seconds: float

    @property
    def average(self) -> float | None:
        """Mean WER of the cells, as the paper's Avg; None when a cell has none (no clip or no words)."""
        rates = [cell.wer for cell in self.cells]
        if not rates or any(rate is None for rate in rates):
            return None
        return sum(rates) / len(rates)

    def to_dict(self) -> dict:
        options = self.options
        noise = None
        if options.snr_db is not None:
            noise = {"snr_db": options.snr_db, "files": [str(file) for file in options.noise_files], "seed": options.seed}
        return {
            "schema": JSON_SCHEMA_ID,
            "tool": {"name": "omniavsr", "version": __version__},
            "manifest": self.manifest,
            "model": self.model,
            "normalizer": {"name": NORMALIZER, "rules": get_normalizer(NORMALIZER).rules},
            "decoding": {**asdict(options.decoding), "guards": options.guards},
            "noise": noise,
            "clips": {"evaluated": len(self.references), "skipped": [{"where": where, "reason": why} for where, why in self.skipped]},
            "cells": [cell.to_dict() for cell in self.cells],
            "average_wer": self.average,
            "seconds": round(self.seconds, 3),
        }


# ---------------------------------------------------------------------------------------------- data


@dataclass
class EvalSet:
    path: Path
    examples: list[Example]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def read_eval_set(manifest: str | Path, root: str | Path | None = None) -> EvalSet:
    """The manifest's clips whose files exist, each id once (hypothesis files are paired by id)."""
    read = check_files(read_manifest(Path(manifest), Path(root) if root is not None else None))
    examples, seen = [], set()
    for example in read.examples:
        if example.id in seen:
            read.skipped.append((example.id, "listed again; only its first line is evaluated"))
        else:
            seen.add(example.id)
            examples.append(example)
    return EvalSet(Path(manifest), examples, read.skipped)


@dataclass
class _Loaded:
    example: Example
    audio: torch.Tensor | None  # 16 kHz, noise mixed in when asked for
    video: torch.Tensor  # the model's video input (transforms.video_input)

    def clip(self, task: str) -> Clip:
        return Clip(audio=self.audio if task != "vsr" else None, video=self.video if task != "asr" else None)


def _groups(examples: list[Example], frames: int) -> list[list[int]]:
    """Consecutive example indices, cut where the next clip would take a group past ``frames``."""
    groups: list[list[int]] = []
    total = 0
    for index, example in enumerate(examples):
        if not groups or total + example.frames > frames:
            groups.append([])
            total = 0
        groups[-1].append(index)
        total += example.frames
    return groups


def _load(example: Example, index: int, noise: NoiseBank | None, options: EvalOptions) -> _Loaded:
    audio, crops = load_example(example, options.cache)
    waveform = None if audio is None else torch.from_numpy(audio)
    if waveform is not None and noise is not None:
        # Seeded by the clip's place in the set: the same noise whatever the grouping, in every cell.
        waveform = noise.add(waveform, options.snr_db, np.random.default_rng([options.seed, index]))
    return _Loaded(example, waveform, video_input(crops))


def _noise_bank(options: EvalOptions) -> NoiseBank | None:
    if options.snr_db is None:
        return None
    try:
        return NoiseBank(options.noise_files)
    except ValueError as error:
        raise InputError(f"{error}; give a recording with sound", code="E_NO_AUDIO") from None


# -------------------------------------------------------------------------------------------- decode


def _decode_cell(decoder: BatchDecoder, tokenizer, clips: list[Clip], task: str) -> list[str]:
    """Transcripts of ``clips`` in order (the decoder batches only clips that share a token budget)."""
    return [
        tokenizer.decode(result.ids, skip_special_tokens=True, clean_up_tokenization_spaces=False) for result in decoder.decode(clips, task)
    ]


def _limits(options: EvalOptions) -> BatchLimits:
    if options.batch_size is None:
        return BatchLimits(frames=options.batch_frames)
    return BatchLimits(size=options.batch_size, frames=10**9, adaptive=False)


def evaluate(
    model: LoadedModel,
    eval_set: EvalSet | str | Path,
    options: EvalOptions = EvalOptions(),
    *,
    on_progress: Callable[[int], None] | None = None,
) -> EvalResult:
    """Decode the set in every cell and score each against the references.

    ``on_progress(n)`` is called as ``n`` more clip decodes are done (or skipped); there are
    ``len(eval_set.examples) * len(plan_cells(model.config, options))`` in all. Unreadable clips are
    skipped and listed in the result, never raised.
    """
    if not isinstance(eval_set, EvalSet):
        eval_set = read_eval_set(eval_set)
    tokenizer = model.require_tokenizer()
    progress = on_progress or (lambda n: None)
    started = time.perf_counter()
    cells = plan_cells(model.config, options)
    options = replace(options, cache=clip_cache(options.cache))
    noise = _noise_bank(options)
    decoders = {
        cell: BatchDecoder(model.module, cell.model_rates(model.config), options.decoding, _limits(options), options.guards)
        for cell in cells
    }
    hypotheses: dict[Cell, list[tuple[str, str]]] = {cell: [] for cell in cells}
    without_audio = dict.fromkeys(cells, 0)
    seconds = dict.fromkeys(cells, 0.0)
    references: list[tuple[str, str]] = []
    skipped = list(eval_set.skipped)

    for group in _groups(eval_set.examples, options.group_frames):
        loaded = []
        for index in group:
            example = eval_set.examples[index]
            try:
                loaded.append(_load(example, index, noise, options))
            except BadExample as error:
                skipped.append((example.id, str(error).removeprefix(f"{example.id}: ")))
        references += [(item.example.id, item.example.text) for item in loaded]
        for cell in cells:
            usable = [item for item in loaded if item.audio is not None or not cell.uses_audio]
            without_audio[cell] += len(loaded) - len(usable)
            if usable:
                decode_started = time.perf_counter()
                texts = _decode_cell(decoders[cell], tokenizer, [item.clip(cell.task) for item in usable], cell.task)
                seconds[cell] += time.perf_counter() - decode_started
                hypotheses[cell] += [(item.example.id, text) for item, text in zip(usable, texts)]
            progress(len(group))

    texts = dict(references)
    results = [
        CellResult(cell, _corpus_counts(hypotheses[cell], texts), without_audio[cell], seconds[cell], hypotheses[cell]) for cell in cells
    ]
    return EvalResult(str(eval_set.path), model_description(model), options, results, references, skipped, time.perf_counter() - started)


def _corpus_counts(hypotheses: list[tuple[str, str]], references: dict[str, str]) -> EditCounts:
    if not hypotheses:
        return EditCounts()
    report = score_texts([text for _, text in hypotheses], [references[utt_id] for utt_id, _ in hypotheses], normalizer=NORMALIZER)
    return report.systems[0].words


# ------------------------------------------------------------------------------------------- outputs


def _jsonl(pairs: list[tuple[str, str]]) -> str:
    return "".join(json.dumps({"utt_id": utt_id, "text": text}, ensure_ascii=False) + "\n" for utt_id, text in pairs)


def write_results(result: EvalResult, out_dir: Path) -> list[Path]:
    """OUT/<cell name>.jsonl per cell and OUT/reference.jsonl, which ``omniavsr score`` pairs by id, plus
    OUT/results.json (``EvalResult.to_dict``); each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {REFERENCE_FILE: _jsonl(result.references)}
    files |= {f"{cell.cell.name}.jsonl": _jsonl(cell.hypotheses) for cell in result.cells}
    files[RESULTS_FILE] = json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n"
    for name, text in files.items():
        write_text_atomic(out_dir / name, text)
    return [out_dir / name for name in files]


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f}"


def table_rows(result: EvalResult) -> tuple[list[str], list[str]]:
    """The header and the one row of the table: WER in %, one decimal; the row is named after the model."""
    name = result.model.get("name") or "model"
    if result.options.snr_db is not None:
        name += f" @ {result.options.snr_db:g} dB"
    header = ["model", *(cell.cell.label for cell in result.cells), "Avg"]
    row = [name, *(_percent(cell.wer) for cell in result.cells), _percent(result.average)]
    return header, row


def render_table(result: EvalResult, out, rich_output: bool = False) -> None:
    """A rich table on a terminal; a Markdown table otherwise (pastes into docs, greps, diffs)."""
    header, row = table_rows(result)
    if rich_output:
        from rich.console import Console
        from rich.table import Table

        caption = f"{len(result.references)} clips" + (f", {len(result.skipped)} skipped" if result.skipped else "")
        table = Table(title=f"WER % on {Path(result.manifest).name}", caption=f"{caption}; {NORMALIZER} normaliser")
        table.add_column(header[0])
        for label in header[1:]:
            table.add_column(label, justify="right")
        table.add_row(*row)
        Console(file=out).print(table)
        return
    widths = [max(len(a), len(b)) for a, b in zip(header, row)]
    lines = [header, ["-" * width for width in widths], row]
    out.writelines(
        "| " + " | ".join(cell.rjust(width) if n else cell.ljust(width) for n, (cell, width) in enumerate(zip(line, widths))) + " |\n"
        for line in lines
    )
