"""Text normalisers for scoring. Every report names the one it used, with its rules.

``lrs3`` is exactly what the Omni-AVSR and auto_avsr evaluations do (``lower().split()``), so numbers
scored with it compare with the papers. ``whisper-en`` is Whisper's English normaliser from the maintained
``whisper-normalizer`` package (contractions, spelled-out numbers, British spellings...).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Normalizer:
    name: str
    rules: str
    words: Callable[[str], list[str]]


def _lrs3(text: str) -> list[str]:
    return text.lower().split()


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


@cache
def _punctuation_to_space() -> dict[int, str]:
    # Every Unicode punctuation character (categories P*) except the apostrophe; a table for str.translate
    # is ten times faster than a per-character category lookup on large files.
    import sys

    return {code: " " for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)).startswith("P") and chr(code) != "'"}


def _basic(text: str) -> list[str]:
    return text.translate(_APOSTROPHES).lower().translate(_punctuation_to_space()).split()


@cache
def _whisper_english() -> Callable[[str], str]:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def _whisper_en(text: str) -> list[str]:
    return _whisper_english()(text).split()


def _none(text: str) -> list[str]:
    return text.split()


NORMALIZERS = {
    normalizer.name: normalizer
    for normalizer in (
        Normalizer("lrs3", "lowercase, split on whitespace (the Omni-AVSR / auto_avsr evaluation)", _lrs3),
        Normalizer(
            "basic",
            "lowercase, punctuation except apostrophes becomes a space, split on whitespace",
            _basic,
        ),
        Normalizer(
            "whisper-en",
            "Whisper's English normaliser (whisper-normalizer package): lowercase, expand contractions, "
            "spelled numbers to digits, British to American spelling, drop fillers and bracketed text",
            _whisper_en,
        ),
        Normalizer("none", "split on whitespace only (case and punctuation kept)", _none),
    )
}


def get_normalizer(name: str) -> Normalizer:
    from ..errors import UsageError

    try:
        return NORMALIZERS[name]
    except KeyError:
        raise UsageError(f"unknown normaliser {name!r}; use one of: {', '.join(NORMALIZERS)}") from None
