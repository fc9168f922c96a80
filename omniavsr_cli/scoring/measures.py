"""Edit counts from rapidfuzz's Levenshtein alignments (as in jiwer), corpus aggregation and bootstrap statistics.

Corpus WER is total edits over total reference words (the papers' definition); the mean of per-utterance
WERs is a different number and is always labelled as such. Empty references are scored: their insertions
count as errors, and they are left out of the per-utterance mean (their WER is undefined).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer
import numpy as np
from rapidfuzz.distance import Levenshtein


@dataclass(frozen=True, slots=True)
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


def join_words(words: list[str]) -> str:
    return " ".join(words)


def _words(text: str) -> list[str]:
    return text.split(" ") if text else []


def _word_codes(reference: list[str], hypothesis: list[str]) -> tuple[list[int], list[int]]:
    # Words become integers before alignment, as in jiwer.process_words, so equal words are matched by
    # equality rather than by hash.
    codes: dict[str, int] = {}
    return [codes.setdefault(w, len(codes)) for w in reference], [codes.setdefault(w, len(codes)) for w in hypothesis]


def _edits(reference: Sequence, hypothesis: Sequence) -> tuple[int, int, int]:
    """(substitutions, deletions, insertions) of rapidfuzz's Levenshtein alignment, the one jiwer uses."""
    substitutions = deletions = insertions = 0
    for tag, ref_start, ref_end, hyp_start, hyp_end in Levenshtein.opcodes(reference, hypothesis):
        if tag == "replace":
            substitutions += ref_end - ref_start
        elif tag == "delete":
            deletions += ref_end - ref_start
        elif tag == "insert":
            insertions += hyp_end - hyp_start
    return substitutions, deletions, insertions


def _counts(reference_length: int, edits: tuple[int, int, int]) -> EditCounts:
    substitutions, deletions, insertions = edits
    return EditCounts(reference_length - substitutions - deletions, substitutions, deletions, insertions)


@dataclass(frozen=True, slots=True)
class AlignedUtterance:
    """One scored pair: the normalised texts (words joined by single spaces) and their word edit counts.

    Only the texts are stored, so a scored corpus takes about the memory of its text; the word lists and
    jiwer's alignment chunks are rebuilt when a report asks for them.
    """

    id: str
    reference_text: str
    hypothesis_text: str
    counts: EditCounts

    @property
    def reference(self) -> list[str]:
        return _words(self.reference_text)

    @property
    def hypothesis(self) -> list[str]:
        return _words(self.hypothesis_text)

    @property
    def alignment(self) -> list[jiwer.AlignmentChunk]:
        opcodes = Levenshtein.opcodes(*_word_codes(self.reference, self.hypothesis))
        return [jiwer.AlignmentChunk(*opcode) for opcode in opcodes]


def align_words(ids: list[str], references: list[str], hypotheses: list[str]) -> list[AlignedUtterance]:
    """Word edit counts of every (reference, hypothesis) pair, one pair at a time.

    The texts are normalised and their words joined by single spaces (see :func:`join_words`).
    """
    aligned = []
    for utt_id, reference, hypothesis in zip(ids, references, hypotheses, strict=True):
        ref_codes, hyp_codes = _word_codes(_words(reference), _words(hypothesis))
        counts = _counts(len(ref_codes), _edits(ref_codes, hyp_codes))
        aligned.append(AlignedUtterance(utt_id, reference, hypothesis, counts))
    return aligned


def character_counts(references: list[str], hypotheses: list[str]) -> EditCounts:
    """Corpus character edit counts over the normalised texts (spaces between words count as characters).

    rapidfuzz aligns the strings themselves, in this process: the counts equal jiwer.process_characters',
    which builds a list of one-character strings and an alignment object per character run (dozens of
    times the text's memory) and takes about 20 times as long.
    """
    length = substitutions = deletions = insertions = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        length += len(reference)
        s, d, i = _edits(reference, hypothesis)
        substitutions, deletions, insertions = substitutions + s, deletions + d, insertions + i
    return _counts(length, (substitutions, deletions, insertions))


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


def _percentile_interval(error_sums: np.ndarray, length_sums: np.ndarray, level: float, samples: int, seed: int) -> ConfidenceInterval:
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
