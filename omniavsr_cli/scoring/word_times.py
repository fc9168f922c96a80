"""Reference word times and how far other word times are from them.

Reference word times come from four kinds of file (:func:`read_word_times`):

- an LRS3 (or LRS2) pretrain / trainval ``.txt``: ``Text:``, ``Conf:`` and other header lines, then a table
  ``WORD START END ASDSCORE`` with one row per word, in seconds from the clip's start;
- a directory of such files, searched recursively;
- a ``corpus.jsonl`` from ``omniavsr synth-corpus``, whose records carry ``words``;
- a JSON object ``{id: [{"word", "start", "end"}, ...]}`` (what tests/data/words/words.json holds).

:func:`timing_errors` pairs a hypothesis's words with the reference's by aligning their texts, and
:func:`summarise` turns the errors of many words into the numbers a results table prints.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

from ..errors import InputError

LRS3_TABLE_HEADER = ("WORD", "START", "END", "ASDSCORE")
TOLERANCES = (0.08, 0.2)  # seconds: one audio token at rate 4 (80 ms), and a fifth of a second


@dataclass(frozen=True)
class WordTime:
    word: str
    start: float  # seconds
    end: float


# ------------------------------------------------------------------------------------------------ reading


def read_word_times(path: str | Path) -> dict[str, list[WordTime]]:
    """Word times by utterance id, from an LRS3 ``.txt``, a directory of them, a synth-corpus ``corpus.jsonl``
    or a JSON object ``{id: [{word, start, end}, ...]}``.

    An LRS3 file's id is ``speaker/clip`` (its directory and its stem, as LRS3 names its clips); in a directory
    a file's id is its path below the directory without the suffix. A corpus's ids are its clip ids (``s7-000003``).
    """
    path = Path(path)
    if path.is_dir():
        return _read_lrs3_directory(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory; check the path", code="E_NOT_FOUND")
    readers = {".txt": _read_lrs3_file, ".jsonl": _read_corpus, ".json": _read_json}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise InputError(
            f"{path}: not a word-times file; give an LRS3 .txt, a directory of them, a synth-corpus corpus.jsonl or a .json of word times"
        )
    times = reader(path)
    if not times:
        raise InputError(f"{path}: holds no word times; give the word times of the clips", code="E_EMPTY")
    return times


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; give a word-times file", code="E_ENCODING") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})", code="E_UNREADABLE") from None


def _checked(where: str, word: object, start: object, end: object) -> WordTime:
    """One word with its times in seconds: a non-empty word, finite times, 0 <= start <= end."""
    if not isinstance(word, str) or not word.strip() or any(character.isspace() for character in word.strip()):
        raise InputError(f"{where}: the word must be one non-empty word, got {word!r}", code="E_PARSE")
    try:
        start, end = float(start), float(end)
    except (TypeError, ValueError):
        raise InputError(f"{where}: start and end must be numbers of seconds, got {start!r} and {end!r}", code="E_PARSE") from None
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
        raise InputError(f"{where}: needs 0 <= start <= end, got start {start} and end {end}", code="E_PARSE")
    return WordTime(word.strip(), start, end)


def parse_lrs3(text: str, name: str) -> list[WordTime]:
    """The rows of an LRS3 ``.txt``'s ``WORD START END ASDSCORE`` table (``name`` is the file, for messages)."""
    lines = text.splitlines()
    header = next((number for number, line in enumerate(lines) if tuple(line.split()) == LRS3_TABLE_HEADER), None)
    if header is None:
        raise InputError(f"{name}: has no '{' '.join(LRS3_TABLE_HEADER)}' line, so no word times; give an LRS3 pretrain or trainval .txt")
    words = []
    for number in range(header + 1, len(lines)):
        fields = lines[number].split()
        if not fields:
            break  # the table ends at a blank line
        if len(fields) not in (3, 4):
            raise InputError(f"{name}:{number + 1}: expected 'WORD START END ASDSCORE', got {lines[number]!r}", code="E_PARSE")
        words.append(_checked(f"{name}:{number + 1}", *fields[:3]))
    return words


def _read_lrs3_file(path: Path) -> dict[str, list[WordTime]]:
    return {f"{path.resolve().parent.name}/{path.stem}": parse_lrs3(_text(path), str(path))}


def _read_lrs3_directory(directory: Path) -> dict[str, list[WordTime]]:
    files = sorted(directory.rglob("*.txt"))
    if not files:
        raise InputError(f"{directory}: holds no .txt files; give a directory of LRS3 .txt files", code="E_NOT_FOUND")
    return {file.relative_to(directory).with_suffix("").as_posix(): parse_lrs3(_text(file), str(file)) for file in files}


def _word_list(words: object, where: str) -> list[WordTime]:
    if not isinstance(words, list):
        raise InputError(f"{where}: expected a list of {{word, start, end}} objects, got {type(words).__name__}", code="E_PARSE")
    checked = []
    for number, word in enumerate(words, 1):
        if not isinstance(word, dict) or not {"word", "start", "end"} <= word.keys():
            raise InputError(f"{where}: word {number} must be an object with word, start and end, got {word!r}", code="E_PARSE")
        checked.append(_checked(f"{where}: word {number}", word["word"], word["start"], word["end"]))
    return checked


def _read_corpus(path: Path) -> dict[str, list[WordTime]]:
    times: dict[str, list[WordTime]] = {}
    for number, line in enumerate(_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise InputError(f"{path}:{number}: not a JSON record; give a synth-corpus corpus.jsonl", code="E_PARSE") from None
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise InputError(f"{path}:{number}: a record without an id; give a synth-corpus corpus.jsonl", code="E_PARSE")
        if "words" not in record:
            raise InputError(
                f"{path}:{number}: clip {record['id']} has no word times (an older synth-corpus made it); make the corpus again",
                code="E_PARSE",
            )
        if record["id"] in times:
            raise InputError(f"{path}:{number}: clip {record['id']} appears twice", code="E_DUPLICATE_ID")
        times[record["id"]] = _word_list(record["words"], f"{path}:{number}")
    if not times:
        raise InputError(f"{path}: holds no records; give a synth-corpus corpus.jsonl", code="E_PARSE")
    return times


def _read_json(path: Path) -> dict[str, list[WordTime]]:
    try:
        content = json.loads(_text(path))
    except ValueError as error:
        raise InputError(f"{path}: not valid JSON ({error}); give {{id: [{{word, start, end}}, ...]}}", code="E_PARSE") from None
    if not isinstance(content, dict):
        raise InputError(
            f"{path}: expected a JSON object {{id: [{{word, start, end}}, ...]}}, got {type(content).__name__}", code="E_PARSE"
        )
    return {str(key): _word_list(words, f"{path}: id {key!r}") for key, words in content.items()}


# ------------------------------------------------------------------------------------------------ measuring


def timing_errors(hypothesis_words: Sequence[WordTime], reference_words: Sequence[WordTime]) -> list[tuple[float, float]]:
    """(|start error|, |end error|) in seconds for each hypothesis word that matches a reference word.

    The two word sequences are aligned by their texts, ignoring case (the Levenshtein alignment ``score`` uses),
    and only words the alignment pairs as equal are scored: a substituted, inserted or deleted word has no
    reference time to be measured against.
    """
    codes: dict[str, int] = {}
    reference = [codes.setdefault(word.word.casefold(), len(codes)) for word in reference_words]
    hypothesis = [codes.setdefault(word.word.casefold(), len(codes)) for word in hypothesis_words]
    errors = []
    for block in Levenshtein.opcodes(reference, hypothesis):
        if block.tag != "equal":
            continue
        for offset in range(block.src_end - block.src_start):
            said, heard = reference_words[block.src_start + offset], hypothesis_words[block.dest_start + offset]
            # microseconds: so that an error of exactly 80 ms counts as within 80 ms whatever the float sums did
            errors.append((round(abs(heard.start - said.start), 6), round(abs(heard.end - said.end), 6)))
    return errors


def _statistics(values: np.ndarray) -> dict:
    if not len(values):
        return {"median": None, "iqr": None} | {f"within_{round(limit * 1000)}ms": None for limit in TOLERANCES}
    low, median, high = np.percentile(values, [25, 50, 75])
    within = {f"within_{round(limit * 1000)}ms": float(np.mean(values <= limit)) for limit in TOLERANCES}
    return {"median": float(median), "iqr": float(high - low)} | within


def summarise(errors: Sequence[tuple[float, float]]) -> dict:
    """The numbers of a results table, in seconds and fractions, for word starts, word ends and both together::

        {"count": words, "all": {...}, "start": {...}, "end": {...}}

    each part ``{"median", "iqr", "within_80ms", "within_200ms"}``: the median absolute error, its interquartile
    range (the spread), and the fraction of errors of at most 80 and 200 ms. ``all`` pools starts and ends.
    With no errors the numbers are None.
    """
    starts = np.array([start for start, _ in errors], dtype=np.float64)
    ends = np.array([end for _, end in errors], dtype=np.float64)
    return {
        "count": len(errors),
        "all": _statistics(np.concatenate([starts, ends])),
        "start": _statistics(starts),
        "end": _statistics(ends),
    }
