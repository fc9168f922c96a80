"""Transcript writers: txt, srt, vtt, tsv and json laid out as openai/whisper writes them, plus jsonl.

Downstream tools that parse whisper's files read ours unchanged (docs/transcribe.md#output-formats); the
JSON is whisper's keys plus ours, with non-ASCII text kept as is (a file name that is not UTF-8 is escaped:
json_text). A writer takes a transcript (anything with ``segments`` of ``start``, ``end``, ``text`` and a
``to_dict()``) and returns the file's text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .atomic import write_text_atomic

FORMATS = ("txt", "srt", "vtt", "tsv", "json", "jsonl")


def format_timestamp(seconds: float, always_include_hours: bool = False, decimal_marker: str = ".") -> str:
    """HH:MM:SS.mmm, hours only when asked for or non-zero (whisper's rounding: to the millisecond)."""
    milliseconds = round(seconds * 1000.0)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    whole_seconds, milliseconds = divmod(milliseconds, 1000)
    hours_part = f"{hours:02d}:" if always_include_hours or hours > 0 else ""
    return f"{hours_part}{minutes:02d}:{whole_seconds:02d}{decimal_marker}{milliseconds:03d}"


def _cue_text(text: str) -> str:
    return text.strip().replace("-->", "->")


def write_txt(transcript) -> str:
    return "".join(segment.text.strip() + "\n" for segment in transcript.segments)


def write_srt(transcript) -> str:
    cues = []
    for number, segment in enumerate(transcript.segments, start=1):
        start = format_timestamp(segment.start, always_include_hours=True, decimal_marker=",")
        end = format_timestamp(segment.end, always_include_hours=True, decimal_marker=",")
        cues.append(f"{number}\n{start} --> {end}\n{_cue_text(segment.text)}\n\n")
    return "".join(cues)


def write_vtt(transcript) -> str:
    cues = [f"{format_timestamp(s.start)} --> {format_timestamp(s.end)}\n{_cue_text(s.text)}\n\n" for s in transcript.segments]
    return "WEBVTT\n\n" + "".join(cues)


def write_tsv(transcript) -> str:
    # Integer milliseconds, as whisper does, so no locale ever writes a decimal comma.
    rows = [f"{round(1000 * s.start)}\t{round(1000 * s.end)}\t{s.text.strip().replace(chr(9), ' ')}\n" for s in transcript.segments]
    return "start\tend\ttext\n" + "".join(rows)


def json_text(data) -> str:
    """JSON with non-ASCII kept as is, and every lone surrogate as its ``\\udcXX`` escape, so the text always
    encodes: a file name that is not UTF-8 reaches Python as such surrogates (os.fsdecode), and json.loads
    then os.fsencode give its bytes back."""
    return json.dumps(data, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")


def write_json(transcript) -> str:
    return json_text(transcript.to_dict())


def write_jsonl(transcript) -> str:
    return "".join(json_text(line) + "\n" for line in transcript.segment_lines())


WRITERS: dict[str, Callable[[object], str]] = {
    "txt": write_txt,
    "srt": write_srt,
    "vtt": write_vtt,
    "tsv": write_tsv,
    "json": write_json,
    "jsonl": write_jsonl,
}


def parse_formats(value: str) -> list[str]:
    """``srt,json`` or ``all`` -> the formats, in the order given; ValueError names a bad one."""
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    if names == ["all"]:
        return list(FORMATS)
    unknown = [name for name in names if name not in WRITERS]
    if unknown or not names:
        raise ValueError(f"unknown output format {', '.join(unknown) or repr(value)}; choose from {', '.join(FORMATS)} or all")
    return list(dict.fromkeys(names))


def output_path(out_dir: Path, clip_id: str, fmt: str) -> Path:
    stem = out_dir / clip_id
    return stem.with_name(f"{stem.name}.{fmt}")


def write_outputs(transcript, out_dir: Path, clip_id: str, formats: list[str]) -> list[Path]:
    """Write every format beside the others, each atomically."""
    written = []
    for fmt in formats:
        path = output_path(out_dir, clip_id, fmt)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, WRITERS[fmt](transcript))
        written.append(path)
    return written


@dataclass
class RunRecord:
    """One line of run.jsonl: what happened to one input."""

    input: str
    id: str
    status: str  # ok, failed or skipped
    error_code: str | None = None
    error: str | None = None
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    media_seconds: float = 0.0
    chunks: int = 0
    flags: list[str] = field(default_factory=list)  # the transcript's: no_speech, video_ended_early

    def to_json(self) -> str:
        return json_text(asdict(self))


class OutputFolder:
    """Where a run's outputs go: ``DIR/<id>.<fmt>`` for each format and one line per input in ``DIR/run.jsonl``."""

    LOG = "run.jsonl"

    def __init__(self, directory: Path, formats: list[str]):
        self.directory, self.formats = directory, formats

    @property
    def log_path(self) -> Path:
        return self.directory / self.LOG

    def paths(self, clip_id: str) -> list[Path]:
        return [output_path(self.directory, clip_id, fmt) for fmt in self.formats]

    def finished(self, clip_id: str) -> bool:
        """Every output of this input is there (a run killed part way is resumed from the others)."""
        return all(path.is_file() for path in self.paths(clip_id))

    def write(self, transcript) -> list[Path]:
        return write_outputs(transcript, self.directory, transcript.id, self.formats)

    def log(self, record: RunRecord) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(record.to_json() + "\n")
