"""Reading hypothesis and reference transcripts in every format ``omniavsr score`` accepts.

Each reader turns a file into a list of :class:`Utterance` (an optional id and its text). Formats with ids
(Kaldi, trn, JSON/JSONL records with ``utt_id``) are paired by id; the others by position. Blank lines are
utterances only in plain text, where they are never dropped (jiwer's CLI drops short lines and shifts the
pairing; we do not).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, UsageError, parameter

FORMATS = ("text", "kaldi", "trn", "json", "jsonl", "srt", "vtt")
FORMATS_WITH_IDS = ("kaldi", "trn", "json", "jsonl")

_EXTENSIONS = {".srt": "srt", ".vtt": "vtt", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".trn": "trn"}
_TRN_LINE = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")
_CUE_TIMING = re.compile(r"-->")
_MARKUP = re.compile(r"<[^>]*>|\{\\[^}]*\}")  # <i>, <v Speaker>, {\an8}


@dataclass(frozen=True, slots=True)
class Utterance:
    id: str | None
    text: str


@dataclass(frozen=True)
class Transcript:
    path: str
    format: str
    utterances: list[Utterance]

    @property
    def has_ids(self) -> bool:
        return bool(self.utterances) and all(u.id is not None for u in self.utterances)


def read_transcript(path: str | Path, fmt: str = "auto") -> Transcript:
    """Read ``path`` (``-`` is standard input) as ``fmt``, or detect the format when ``fmt`` is ``auto``."""
    name = str(path)
    text = _decode(_read_bytes(name), name)
    return parse_transcript(text, fmt, name)


def parse_transcript(text: str, fmt: str, name: str) -> Transcript:
    """Parse already decoded text; ``name`` is used in error messages and for extension-based detection."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start an empty utterance
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    detected = fmt == "auto"
    if detected:
        fmt = detect_format(name, lines)
    return _parse(lines, fmt, name, detected)


def _parse(lines: list[str], fmt: str, name: str, detected: bool) -> Transcript:
    if fmt not in FORMATS:
        raise UsageError(f"unknown transcript format {fmt!r}; use one of: auto, {', '.join(FORMATS)}", code="E_FORMAT")
    utterances = _PARSERS[fmt](lines, name)
    if fmt in ("kaldi", "trn"):
        _reject_duplicate_ids(utterances, lines, name, detected and fmt == "kaldi")
    return Transcript(name, fmt, utterances)


def consistent_formats(transcripts: list[Transcript], detected: list[bool]) -> list[Transcript]:
    """Re-read as Kaldi each detected plain-text transcript whose lines mostly start with the ids of a Kaldi one.

    Detection looks at one file at a time, and a Kaldi file with a blank line (or ids without a digit) is
    plain text on its own; scored by line against a Kaldi file, its ids would count as words.
    """
    kaldi_ids = {u.id for t in transcripts if t.format == "kaldi" for u in t.utterances}
    return [
        _parse([u.text for u in t.utterances], "kaldi", t.path, True)
        if auto and t.format == "text" and _starts_with_ids(t, kaldi_ids)
        else t
        for t, auto in zip(transcripts, detected, strict=True)
    ]


def _starts_with_ids(transcript: Transcript, ids: set[str]) -> bool:
    first = [u.text.split(maxsplit=1)[0] for u in transcript.utterances if u.text.strip()]
    return 2 * sum(token in ids for token in first) > len(first)


def detect_format(name: str, lines: list[str]) -> str:
    by_extension = _EXTENSIONS.get(Path(name).suffix.lower())
    if by_extension:
        return by_extension
    content = [line.strip() for line in lines if line.strip()]
    if not content:
        return "text"
    if content[0].startswith("WEBVTT"):
        return "vtt"
    if content[0][0] in "{[":
        try:
            json.loads("\n".join(lines))
            return "json"
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python's parser goes
            if all(_is_json_object(line) for line in content):
                return "jsonl"
    if content[0].isdigit() and len(content) > 1 and _CUE_TIMING.search(content[1]):
        return "srt"
    if all(_TRN_LINE.match(line) for line in content):
        return "trn"
    if _looks_like_kaldi(lines):
        return "kaldi"
    return "text"


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def _looks_like_kaldi(lines: list[str]) -> bool:
    # Kaldi's `utt-id words...` cannot be told from plain text by syntax alone. Real ids contain a digit
    # and an id-like separator or letter (spk1_utt2, 1089-134686-0000); ordinary sentences rarely all start
    # with such tokens. A repeated id does not make the file plain text (its ids would be scored as words):
    # it is reported. The report names the detected format, --format overrides.
    if any(not line.strip() for line in lines):
        return False
    return all(
        any(c.isdigit() for c in token) and any(c.isalpha() or c in "_-/" for c in token)
        for token in (line.split(maxsplit=1)[0] for line in lines)
    )


def _read_bytes(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    path = Path(name)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file; check the path", code="E_NOT_FOUND") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory; give a transcript file", code="E_NOT_FOUND") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied; make the file readable", code="E_UNREADABLE") from None
    except OSError as error:
        raise InputError(f"{name}: cannot read ({error.strerror})", code="E_UNREADABLE") from None


# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BYTE_ORDER_MARKS = [
    (b"\xff\xfe\x00\x00", "UTF-32 LE", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32 BE", "UTF-32"),
    (b"\xff\xfe", "UTF-16 LE", "UTF-16"),
    (b"\xfe\xff", "UTF-16 BE", "UTF-16"),
]


def _reject_other_encodings(raw: bytes, name: str) -> None:
    """UTF-16/32 and binary files, which the generic 'not UTF-8' hint (iconv -f latin1) would not fix."""
    for mark, encoding, iconv in _BYTE_ORDER_MARKS:
        if raw.startswith(mark):
            raise InputError(
                f"{name}: encoded as {encoding} (it starts with a byte order mark), not UTF-8; convert it, e.g. iconv -f {iconv} -t UTF-8",
                code="E_ENCODING",
            )
    nul = raw.find(b"\x00")
    if nul < 0:
        return
    # ASCII text in UTF-16 without a byte order mark: every other byte is NUL.
    sample = raw[:4096]
    for encoding, text_bytes, zero_bytes in [("UTF-16LE", sample[::2], sample[1::2]), ("UTF-16BE", sample[1::2], sample[::2])]:
        if 0 not in text_bytes and zero_bytes.count(0) * 2 > len(zero_bytes):
            raise InputError(
                f"{name}: looks like {encoding} without a byte order mark, not UTF-8; convert it, e.g. iconv -f {encoding} -t UTF-8",
                code="E_ENCODING",
            )
    raise InputError(
        f"{name}: contains NUL bytes (first at file offset {nul}): a binary file, not a transcript; give a text transcript in UTF-8",
        code="E_ENCODING",
    )


def _decode(raw: bytes, name: str) -> str:
    _reject_other_encodings(raw, name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise InputError(
            f"{name}:{line}: not valid UTF-8 (byte 0x{raw[error.start]:02x} at line {line}, byte {column}; "
            f"file offset {error.start}); convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8",
            code="E_ENCODING",
        ) from None
    return text.removeprefix("\ufeff")


def _parse_error(name: str, lineno: int, expected: str, line: str) -> InputError:
    shown = line if len(line) <= 60 else line[:57] + "..."
    return InputError(
        f"{name}:{lineno}: expected {expected}, got {shown!r}; fix the line or pass {parameter('hypothesis_format')}", code="E_PARSE"
    )


def _parse_text(lines: list[str], name: str) -> list[Utterance]:
    return [Utterance(None, line) for line in lines]


def _parse_kaldi(lines: list[str], name: str) -> list[Utterance]:
    utterances = []
    for line in lines:
        if not line.strip():
            continue  # Kaldi tables have no blank records; an empty utterance is its id alone
        parts = line.split(maxsplit=1)
        utterances.append(Utterance(parts[0], parts[1] if len(parts) > 1 else ""))
    return utterances


def _parse_trn(lines: list[str], name: str) -> list[Utterance]:
    utterances = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        match = _TRN_LINE.match(line)
        if not match:
            raise _parse_error(name, lineno, "a trn line 'words (utt-id)'", line)
        utterances.append(Utterance(match.group(2).strip(), match.group(1)))
    return utterances


def _text_of_record(record: dict, where: str) -> str:
    segments = record.get("segments")
    if isinstance(segments, list):
        return " ".join(str(s.get("text", "")).strip() for s in segments if isinstance(s, dict))
    if isinstance(record.get("text"), str):
        return record["text"]
    raise InputError(f"{where}: a transcript record needs a 'text' string or a 'segments' list", code="E_PARSE")


def _id_of_record(record: dict) -> str | None:
    for key in ("utt_id", "id"):
        if isinstance(record.get(key), str):
            return record[key]
    return None


def _join_segments(records: list[tuple[str | None, str]], name: str) -> list[Utterance]:
    """Records sharing an id are segments of one utterance, joined in file order."""
    ids = [utt_id for utt_id, _ in records]
    if all(utt_id is None for utt_id in ids):
        return [Utterance(None, text) for _, text in records]
    if any(utt_id is None for utt_id in ids):
        raise InputError(f"{name}: some records have an 'utt_id' and some do not; give every record one", code="E_PARSE")
    joined: dict[str, list[str]] = {}
    for utt_id, text in records:
        joined.setdefault(utt_id, []).append(text.strip())
    return [Utterance(utt_id, " ".join(parts)) for utt_id, parts in joined.items()]


def _parse_json(lines: list[str], name: str) -> list[Utterance]:
    try:
        document = json.loads("\n".join(lines))
    except json.JSONDecodeError as error:
        raise InputError(
            f"{name}:{error.lineno}: not valid JSON ({error.msg}); fix the file or pass {parameter('hypothesis_format')}", code="E_PARSE"
        ) from None
    except RecursionError:
        raise InputError(f"{name}: JSON nested too deeply to read; a transcript is a shallow object or list", code="E_PARSE") from None
    if isinstance(document, dict):
        if "segments" in document or "text" in document:
            return [Utterance(_id_of_record(document), _text_of_record(document, name))]
        if all(isinstance(value, str) for value in document.values()):
            return [Utterance(str(key), value) for key, value in document.items()]
    if isinstance(document, list) and all(isinstance(item, dict) for item in document):
        records = [(_id_of_record(item), _text_of_record(item, f"{name}: record {i}")) for i, item in enumerate(document, 1)]
        return _join_segments(records, name)
    raise InputError(
        f"{name}: JSON must be a transcript object (with 'text' or 'segments'), a list of such records, "
        "or an object mapping utterance ids to texts",
        code="E_PARSE",
    )


def _parse_jsonl(lines: list[str], name: str) -> list[Utterance]:
    records = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            raise _parse_error(name, lineno, "one JSON object per line", line) from None
        if not isinstance(record, dict):
            raise _parse_error(name, lineno, "one JSON object per line", line)
        records.append((_id_of_record(record), _text_of_record(record, f"{name}:{lineno}")))
    return _join_segments(records, name)


def _cue_blocks(lines: list[str], start: int) -> list[list[tuple[int, str]]]:
    blocks, block = [], []
    for lineno, line in enumerate(lines[start:], start + 1):
        if line.strip():
            block.append((lineno, line.strip()))
        elif block:
            blocks.append(block)
            block = []
    if block:
        blocks.append(block)
    return blocks


def _cue_text(block: list[tuple[int, str]], name: str, expected: str) -> str:
    for position, (_, line) in enumerate(block[:2]):
        if _CUE_TIMING.search(line):
            text = " ".join(_MARKUP.sub("", text_line) for _, text_line in block[position + 1 :])
            return " ".join(text.split())
    lineno, line = block[min(1, len(block) - 1)]
    raise _parse_error(name, lineno, expected, line)


def _parse_srt(lines: list[str], name: str) -> list[Utterance]:
    expected = "a subtitle timing line 'HH:MM:SS,mmm --> HH:MM:SS,mmm'"
    return [Utterance(None, _cue_text(block, name, expected)) for block in _cue_blocks(lines, 0)]


def _parse_vtt(lines: list[str], name: str) -> list[Utterance]:
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or not lines[first].strip().startswith("WEBVTT"):
        raise _parse_error(name, (first or 0) + 1, "the 'WEBVTT' header", lines[first] if first is not None else "")
    header_end = next((i for i in range(first, len(lines)) if not lines[i].strip()), len(lines))
    blocks = _cue_blocks(lines, header_end)
    expected = "a cue timing line 'MM:SS.mmm --> MM:SS.mmm'"
    return [
        Utterance(None, _cue_text(block, name, expected))
        for block in blocks
        if block[0][1].split(maxsplit=1)[0] not in ("NOTE", "STYLE", "REGION")
    ]


def _reject_duplicate_ids(utterances: list[Utterance], lines: list[str], name: str, detected_kaldi: bool) -> None:
    first: dict[str | None, int] = {}
    repeats = [index for index, utterance in enumerate(utterances) if first.setdefault(utterance.id, index) != index]
    if not repeats:
        return
    # Kaldi and trn files have one utterance per non-blank line.
    line_of = [lineno for lineno, line in enumerate(lines, 1) if line.strip()]
    utt_id = utterances[repeats[0]].id
    more = f" ({len(repeats)} repeated ids in all)" if len(repeats) > 1 else ""
    hint = f", or pass {parameter('hypothesis_format')} text if the first words are not utterance ids" if detected_kaldi else ""
    raise InputError(
        f"{name}:{line_of[repeats[0]]}: utterance id {utt_id!r} repeats the one on line {line_of[first[utt_id]]}{more}; "
        f"each id may appear once: remove or rename one of them{hint}",
        code="E_DUPLICATE_ID",
    )


_PARSERS = {
    "text": _parse_text,
    "kaldi": _parse_kaldi,
    "trn": _parse_trn,
    "json": _parse_json,
    "jsonl": _parse_jsonl,
    "srt": _parse_srt,
    "vtt": _parse_vtt,
}
