"""The GRID corpus grammar: command colour preposition letter digit adverb ("place blue at f two now").

Transcripts keep GRID's spelling (a letter is one lower-case letter, a digit its word). What espeak-ng is
given differs only where it would read a word the wrong way: a lone "a" is read as the article, so the
letter is spelled "eigh".
"""

from __future__ import annotations

import hashlib

import numpy as np

SLOTS = (
    ("bin", "lay", "place", "set"),
    ("blue", "green", "red", "white"),
    ("at", "by", "in", "with"),
    tuple("abcdefghijklmnopqrstuvxyz"),  # GRID has no "w": its name is three syllables
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    ("again", "now", "please", "soon"),
)
VOCABULARY = tuple(word for slot in SLOTS for word in dict.fromkeys(slot))
SPOKEN = {"a": "eigh"}
HELD_OUT_EVERY = 10  # one sentence in ten belongs to the test split, never to training


def sentence(rng: np.random.Generator) -> str:
    return " ".join(slot[int(rng.integers(len(slot)))] for slot in SLOTS)


def spoken_form(text: str) -> str:
    return " ".join(SPOKEN.get(word, word) for word in text.split())


def split_of(text: str) -> str:
    """``test`` or ``train``, fixed by the sentence itself, so no test sentence is ever trained on."""
    digest = hashlib.sha256(text.encode()).digest()
    return "test" if int.from_bytes(digest[:4], "big") % HELD_OUT_EVERY == 0 else "train"


def sentence_in(split: str, rng: np.random.Generator) -> str:
    """A random sentence of ``split`` (train, test, or all)."""
    while True:
        text = sentence(rng)
        if split == "all" or split_of(text) == split:
            return text
