"""``score``: read, normalise, pair and measure; the library entry point behind ``omniavsr score``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .formats import Transcript, Utterance, consistent_formats, read_transcript
from .measures import (
    AlignedUtterance,
    ConfidenceInterval,
    EditCounts,
    PairedComparison,
    align_words,
    bootstrap_interval,
    character_counts,
    corpus_counts,
    join_words,
    mean_utterance_rate,
    paired_bootstrap,
)
from .normalizers import Normalizer, get_normalizer
from .pairing import join_utterances, pair


@dataclass(frozen=True)
class Source:
    path: str
    format: str
    utterances: int


@dataclass(frozen=True)
class SystemScore:
    source: Source
    utterances: list[AlignedUtterance]
    words: EditCounts
    characters: EditCounts
    mean_utterance_wer: float | None
    mean_utterance_count: int
    interval: ConfidenceInterval | None = None

    @property
    def wer(self) -> float | None:
        return self.words.rate

    @property
    def cer(self) -> float | None:
        return self.characters.rate


@dataclass(frozen=True)
class ScoreReport:
    reference: Source
    systems: list[SystemScore]  # the hypothesis, then the --compare system if any
    pairing: str
    normalizer: Normalizer
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    empty_references: int = 0
    comparison: PairedComparison | None = None
    warnings: list[str] = field(default_factory=list)


# rapidfuzz's alignment takes time proportional to the product of the two lengths: this many character
# pairs take about half a minute, and a pair of one-line files of megabytes would keep score busy for days.
MAX_ALIGNMENT_PAIRS = 10**11


def _check_lengths(source: Source, ids: list[str], references: list[str], hypotheses: list[str]) -> None:
    for utt_id, reference, hypothesis in zip(ids, references, hypotheses, strict=True):
        if len(reference) * len(hypothesis) > MAX_ALIGNMENT_PAIRS:
            raise InputError(
                f"{source.path}: utterance {utt_id} is too long to align ({len(hypothesis)} characters against "
                f"{len(reference)} in the reference; their product is limited to 10^11, about half a minute of "
                "alignment); split the transcripts into shorter utterances",
                code="E_TOO_LONG",
            )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _source(transcript: Transcript) -> Source:
    return Source(transcript.path, transcript.format, len(transcript.utterances))


def _score_system(
    source: Source, ids: list[str], references: list[str], hypotheses: list[str], confidence: bool, samples: int, seed: int
) -> SystemScore:
    _check_lengths(source, ids, references, hypotheses)
    aligned = align_words(ids, references, hypotheses)
    mean_rate, mean_count = mean_utterance_rate(aligned)
    return SystemScore(
        source,
        aligned,
        corpus_counts(aligned),
        character_counts(references, hypotheses),
        mean_rate,
        mean_count,
        bootstrap_interval(aligned, samples, seed) if confidence else None,
    )


def score_transcripts(
    reference: Transcript,
    hypotheses: list[Transcript],
    *,
    normalizer: str = "lrs3",
    allow_missing: bool = False,
    join: bool = False,
    confidence: bool = False,
    bootstrap_samples: int = 1000,
    seed: int = 0,
) -> ScoreReport:
    """Score one or two hypothesis transcripts against a reference that is already read.

    With two hypotheses, the second is compared with the first by a paired bootstrap on the same
    references.
    """
    norm = get_normalizer(normalizer)
    if join:
        reference = join_utterances(reference)
        hypotheses = [join_utterances(h) for h in hypotheses]
    paired = pair(reference, hypotheses, allow_missing)
    if not paired.ids:
        raise InputError(f"{reference.path}: no utterances to score; the reference file is empty", code="E_EMPTY")

    def normalised(texts: list[str]) -> list[str]:
        return [join_words(norm.words(text)) for text in texts]

    references = normalised(paired.references)
    systems = [
        _score_system(_source(h), paired.ids, references, normalised(texts), confidence, bootstrap_samples, seed)
        for h, texts in zip(hypotheses, paired.hypotheses, strict=True)
    ]
    warnings = []
    empty = sum(1 for text in references if not text)
    if empty == len(references):
        warnings.append(
            f"every reference is empty after '{norm.name}' normalisation: WER is undefined; "
            f"the hypothesis inserted {systems[0].words.insertions} words"
        )
    elif empty:
        inserted = sum(u.counts.insertions for u in systems[0].utterances if not u.reference)
        pronoun = "it" if empty == 1 else "them"
        opposite = (
            f"{_count(inserted, 'hypothesis word')} opposite {pronoun} count as insertions in the corpus WER"
            if inserted
            else f"the hypothesis is empty opposite {pronoun} too"
        )
        warnings.append(
            f"{_count(empty, 'reference utterance')} {'is' if empty == 1 else 'are'} empty: {opposite}; "
            f"the mean utterance WER leaves {pronoun} out"
        )
    if paired.missing or paired.extra:
        warnings.append(
            f"scored the {_count(len(paired.ids), 'common id')}; left out {_count(len(paired.missing), 'reference id')} "
            f"without a hypothesis and ignored {_count(len(paired.extra), 'hypothesis id')} not in the reference"
        )
    comparison = None
    if len(systems) == 2:
        comparison = paired_bootstrap(systems[0].utterances, systems[1].utterances, bootstrap_samples, seed)
    return ScoreReport(
        _source(reference),
        systems,
        paired.by,
        norm,
        paired.missing,
        paired.extra,
        empty,
        comparison,
        warnings,
    )


def score(
    hypothesis: str | Path,
    reference: str | Path,
    *,
    compare: str | Path | None = None,
    hypothesis_format: str = "auto",
    reference_format: str | None = None,
    **options,
) -> ScoreReport:
    """Score transcript files: ``score("hyp.txt", "ref.txt", normalizer="lrs3")``.

    ``reference_format`` defaults to ``hypothesis_format``; ``options`` are those of :func:`score_transcripts`.
    """
    if str(hypothesis) == "-" and str(reference) == "-":
        raise InputError("only one of HYP and REF can be read from standard input ('-')", code="E_USAGE")
    ref_format = reference_format or hypothesis_format
    hyp_paths = [path for path in (hypothesis, compare) if path is not None]
    ref, *hyps = consistent_formats(
        [read_transcript(reference, ref_format), *(read_transcript(path, hypothesis_format) for path in hyp_paths)],
        [ref_format == "auto", *(hypothesis_format == "auto" for _ in hyp_paths)],
    )
    return score_transcripts(ref, hyps, **options)


def score_texts(hypotheses: list[str], references: list[str], **options) -> ScoreReport:
    """Score in-memory utterance lists, paired by position."""
    return score_transcripts(
        Transcript("<references>", "text", [Utterance(None, t) for t in references]),
        [Transcript("<hypotheses>", "text", [Utterance(None, t) for t in hypotheses])],
        **options,
    )
