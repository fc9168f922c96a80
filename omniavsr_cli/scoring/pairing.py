"""Pairing hypothesis utterances with reference utterances: by id when every side has ids, else by line."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError, parameter
from .formats import Transcript, Utterance


@dataclass(frozen=True)
class Pairing:
    by: str  # "id" or "line"
    ids: list[str]  # one display id per scored utterance, in reference order
    references: list[str]
    hypotheses: list[list[str]]  # per system, aligned with ``references``
    missing: list[str]  # reference ids some hypothesis lacks (left out, only with allow_missing)
    extra: list[str]  # hypothesis ids the reference lacks (ignored, only with allow_missing)


def join_utterances(transcript: Transcript) -> Transcript:
    """The whole file as one utterance (like jiwer's --global), for documents such as subtitles."""
    text = " ".join(u.text for u in transcript.utterances)
    return Transcript(transcript.path, transcript.format, [Utterance(None, text)])


def _listed(ids: list[str], limit: int = 5) -> str:
    return ", ".join(ids[:limit]) + (", ..." if len(ids) > limit else "")


def pair(reference: Transcript, hypotheses: list[Transcript], allow_missing: bool = False) -> Pairing:
    if reference.has_ids and all(h.has_ids for h in hypotheses):
        return _pair_by_id(reference, hypotheses, allow_missing)
    for hypothesis in hypotheses:
        if len(hypothesis.utterances) != len(reference.utterances):
            hint = "pair them by id (Kaldi, trn or JSON with utt_id on both sides)"
            if len(hypothesis.utterances) == 1 or len(reference.utterances) == 1:
                hint = f"pass {parameter('join')} to score each file as one utterance"
            raise InputError(
                f"{hypothesis.path} has {len(hypothesis.utterances)} utterances but {reference.path} has "
                f"{len(reference.utterances)}, and they are paired by line; {hint}",
                code="E_COUNT_MISMATCH",
            )
    ids = [u.id if u.id is not None else str(i) for i, u in enumerate(reference.utterances, 1)]
    return Pairing(
        "line",
        ids,
        [u.text for u in reference.utterances],
        [[u.text for u in h.utterances] for h in hypotheses],
        [],
        [],
    )


def _pair_by_id(reference: Transcript, hypotheses: list[Transcript], allow_missing: bool) -> Pairing:
    texts = [{u.id: u.text for u in h.utterances} for h in hypotheses]
    reference_ids = {u.id for u in reference.utterances}
    missing = [u.id for u in reference.utterances if any(u.id not in t for t in texts)]
    extra = list(dict.fromkeys(i for h in hypotheses for i in (u.id for u in h.utterances) if i not in reference_ids))
    if (missing or extra) and not allow_missing:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of {len(reference.utterances)} reference ids have no hypothesis ({_listed(missing)})")
        if extra:
            parts.append(f"{len(extra)} hypothesis ids are not in the reference ({_listed(extra)})")
        common = len(reference.utterances) - len(missing)
        raise InputError(
            f"{'; '.join(parts)}; pass {parameter('allow_missing')} to score the {common} common ids",
            code="E_ID_MISMATCH",
        )
    missing_set = set(missing)
    kept = [u for u in reference.utterances if u.id not in missing_set]
    if not kept:
        raise InputError(f"no utterance id is shared by {reference.path} and the hypotheses", code="E_ID_MISMATCH")
    return Pairing(
        "id",
        [u.id for u in kept],
        [u.text for u in kept],
        [[t[u.id] for u in kept] for t in texts],
        missing,
        extra,
    )
