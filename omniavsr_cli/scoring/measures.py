"""Edit counts from jiwer's alignments, corpus aggregation, and bootstrap statistics.

Corpus WER is total edits over total reference words (the papers' definition); the mean of per-utterance
WERs is a different number and is always labelled as such. Empty references are scored: their insertions
count as errors, and they are left out of the per-utterance mean (their WER is undefined).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import jiwer
import numpy as np


@dataclass(frozen=True)
class EditCounts:
    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def reference_length(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def rate(self) -> float | None:
        """errors / reference length; None when the reference is empty (undefined)."""
        return self.errors / self.reference_length if self.reference_length else None

    def __add__(self, other: EditCounts) -> EditCounts:
        return EditCounts(
            self.hits + other.hits,
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
        )


@dataclass(frozen=True)
class AlignedUtterance:
    """One scored pair: the normalised words and jiwer's alignment chunks between them."""

    id: str
    reference: list[str]
    hypothesis: list[str]
    counts: EditCounts
    alignment: list[jiwer.AlignmentChunk]


# Texts reach jiwer already normalised and joined by single spaces (join_words), so its default clean-up
# steps (collapse spaces, strip) would change nothing; skipping them saves a tenth of the scoring time.
_SPLIT_WORDS = jiwer.ReduceToListOfListOfWords()
_SPLIT_CHARACTERS = jiwer.ReduceToListOfListOfChars()


def join_words(words: list[str]) -> str:
    return " ".join(words)


def _counts_of(alignment: list[jiwer.AlignmentChunk]) -> EditCounts:
    hits = substitutions = deletions = insertions = 0
    for chunk in alignment:
        if chunk.type == "equal":
            hits += chunk.ref_end_idx - chunk.ref_start_idx
        elif chunk.type == "substitute":
            substitutions += chunk.ref_end_idx - chunk.ref_start_idx
        elif chunk.type == "delete":
            deletions += chunk.ref_end_idx - chunk.ref_start_idx
        else:
            insertions += chunk.hyp_end_idx - chunk.hyp_start_idx
    return EditCounts(hits, substitutions, deletions, insertions)


def align_words(ids: list[str], references: list[str], hypotheses: list[str]) -> list[AlignedUtterance]:
    """Align every (reference, hypothesis) pair with jiwer, in one batched call.

    The texts are normalised and their words joined by single spaces (see :func:`join_words`).
    """
    output = jiwer.process_words(
        references, hypotheses, reference_transform=_SPLIT_WORDS, hypothesis_transform=_SPLIT_WORDS
    )
    return [
        AlignedUtterance(utt_id, ref, hyp, _counts_of(alignment), alignment)
        for utt_id, ref, hyp, alignment in zip(ids, output.references, output.hypotheses, output.alignments, strict=True)
    ]


def character_counts(references: list[str], hypotheses: list[str]) -> EditCounts:
    """Corpus character edit counts over the normalised texts (spaces between words count as characters)."""
    output = jiwer.process_characters(
        references, hypotheses, reference_transform=_SPLIT_CHARACTERS, hypothesis_transform=_SPLIT_CHARACTERS
    )
    return EditCounts(output.hits, output.substitutions, output.deletions, output.insertions)


# Below this many utterances a second process costs more than it saves.
PARALLEL_MIN_UTTERANCES = 5000


def character_counts_in_background(references: list[str], hypotheses: list[str]) -> Callable[[], EditCounts]:
    """Start :func:`character_counts` and return a function that waits for its result.

    Character alignment is the slowest part of scoring (about 60 % of the time on 100k utterances), and
    it is independent of the word alignment, so on large corpora it runs in a second process while the
    words are aligned in this one.
    """
    if len(references) < PARALLEL_MIN_UTTERANCES or (os.cpu_count() or 1) < 2:
        counts = character_counts(references, hypotheses)
        return lambda: counts
    executor = ProcessPoolExecutor(max_workers=1)
    future = executor.submit(character_counts, references, hypotheses)
    executor.shutdown(wait=False)  # the pending call still completes; its worker exits afterwards
    return future.result


def corpus_counts(utterances: list[AlignedUtterance]) -> EditCounts:
    total = EditCounts()
    for utterance in utterances:
        total = total + utterance.counts
    return total


def mean_utterance_rate(utterances: list[AlignedUtterance]) -> tuple[float | None, int]:
    """Mean of per-utterance WERs over utterances with a non-empty reference, and how many there were."""
    rates = [u.counts.rate for u in utterances if u.counts.reference_length]
    return (sum(rates) / len(rates) if rates else None), len(rates)


def _resampled_sums(columns: list[np.ndarray], samples: int, seed: int) -> list[np.ndarray]:
    """Sum each per-utterance column over ``samples`` bootstrap resamples of the utterances.

    All columns share the same resampled indices, which is what makes a paired comparison paired. The
    index matrix is drawn in blocks so memory stays near 32 MB whatever the corpus size.
    """
    count = len(columns[0])
    rng = np.random.default_rng(seed)
    block = max(1, 4_000_000 // max(count, 1))
    sums = [[] for _ in columns]
    for start in range(0, samples, block):
        indices = rng.integers(0, count, size=(min(block, samples - start), count))
        for out, column in zip(sums, columns):
            out.append(column[indices].sum(axis=1))
    return [np.concatenate(out) for out in sums]


@dataclass(frozen=True)
class ConfidenceInterval:
    low: float
    high: float
    level: float
    samples: int
    seed: int


def bootstrap_interval(
    utterances: list[AlignedUtterance], samples: int = 1000, seed: int = 0, level: float = 0.95
) -> ConfidenceInterval | None:
    """Percentile bootstrap interval of the corpus WER, resampling utterances (Bisani and Ney, 2004)."""
    errors = np.array([u.counts.errors for u in utterances], dtype=np.int64)
    lengths = np.array([u.counts.reference_length for u in utterances], dtype=np.int64)
    if not utterances or not lengths.sum():
        return None
    error_sums, length_sums = _resampled_sums([errors, lengths], samples, seed)
    return _percentile_interval(error_sums, length_sums, level, samples, seed)


def _percentile_interval(
    error_sums: np.ndarray, length_sums: np.ndarray, level: float, samples: int, seed: int
) -> ConfidenceInterval:
    # A resample that drew only empty references has no WER; it is left out rather than counted as infinite.
    rates = np.where(length_sums > 0, error_sums / np.maximum(length_sums, 1), np.nan)
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(rates, [tail, 100 - tail])
    return ConfidenceInterval(float(low), float(high), level, samples, seed)


@dataclass(frozen=True)
class PairedComparison:
    """System B minus system A, in WER (fraction): positive means B makes more errors."""

    delta: float | None
    interval: ConfidenceInterval | None
    p_value: float


def paired_bootstrap(
    first: list[AlignedUtterance],
    second: list[AlignedUtterance],
    samples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedComparison:
    """Paired bootstrap test of two systems scored on the same references.

    Both systems are resampled with the same utterance indices. The two-sided p-value is twice the smaller
    share of resamples in which the difference in errors is <= 0 or >= 0 (capped at 1), so identical
    systems give p = 1.
    """
    errors_a = np.array([u.counts.errors for u in first], dtype=np.int64)
    errors_b = np.array([u.counts.errors for u in second], dtype=np.int64)
    lengths = np.array([u.counts.reference_length for u in first], dtype=np.int64)
    total_length = int(lengths.sum())
    delta = (int(errors_b.sum()) - int(errors_a.sum())) / total_length if total_length else None
    sums_a, sums_b, length_sums = _resampled_sums([errors_a, errors_b, lengths], samples, seed)
    difference = sums_b - sums_a
    p_value = min(1.0, 2 * min(float(np.mean(difference <= 0)), float(np.mean(difference >= 0))))
    interval = _percentile_interval(difference, length_sums, level, samples, seed) if total_length else None
    return PairedComparison(delta, interval, p_value)
