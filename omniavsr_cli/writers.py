"""Transcript writers: txt, srt, vtt, tsv and json laid out as openai/whisper writes them, plus jsonl.

Downstream tools that parse whisper's files read ours unchanged (docs/transcribe.md#output-formats); the
JSON is whisper's keys plus ours, with non-ASCII text kept as is (a file name that is not UTF-8 is escaped:
json_text). A writer takes a transcript (anything with ``segments`` of ``start``, ``end``, ``text`` and a
``to_dict()``) and the subtitle options, and returns the file's text.

A segment with word timings (``segment.words``, a list of :class:`Word`) is shown in SRT and VTT as cues cut
at word boundaries under :class:`SubtitleOptions` (subtitle_cues); a segment without them is one cue over
the segment, exactly as whisper writes it. TXT and TSV stay one line per segment, as whisper's do.

With ``speaker_labels``, SRT cues and TXT lines start with who speaks (``[face 1] ``, ``[off-screen] ``) and
VTT cues are WebVTT voice spans (``<v face 1>``); a segment without a speaker (no video) gets none.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .atomic import write_text_atomic
from .errors import UsageError, parameter

FORMATS = ("txt", "srt", "vtt", "tsv", "json", "jsonl")


@dataclass(frozen=True)
class Word:
    """One word of a segment and when it was said, in the source's timeline. ``word`` keeps its leading space
    as whisper keeps it (" hello"; none where the word joins the one before), so a segment's words joined
    give its text."""

    word: str
    start: float
    end: float
    probability: float

    def to_dict(self) -> dict:
        """Whisper's word entry: word, start, end, probability, in that order."""
        return {"word": self.word, "start": self.start, "end": self.end, "probability": self.probability}


@dataclass(frozen=True)
class SubtitleOptions:
    """How segments with word timings become subtitle cues; the defaults follow the Netflix and BBC style
    guides (docs/transcribe.md#subtitles-from-word-timings says why each). A limit of None is no limit."""

    max_line_width: int | None = 42  # characters on a line (a longer single word gets a line of its own)
    max_line_count: int | None = 2  # lines in a cue
    max_words_per_line: int | None = None  # words on a line, alongside the width
    highlight_words: bool = False  # one cue per word, the word underlined (<u>) in its cue's text
    max_cue_s: float = 7.0  # longest a cue may be on screen (a single longer word is its own cue)
    min_cue_s: float = 5 / 6  # shortest, when the silence after the cue leaves room
    min_gap_s: float = 0.08  # between cues, when the silence between their words leaves room: 2 frames at 25 fps
    pause_s: float = 1.0  # a silence longer than this between two words starts a new cue
    reading_cps: float | None = 20.0  # a cue stays up long enough to read at this many characters a second, if room
    max_linger_s: float = 1.5  # ... but never longer than this after its last word
    speaker_labels: bool = False  # name each segment's speaker: SRT and TXT "[face 1] " before the text, VTT <v face 1>

    def __post_init__(self):
        for name in ("max_line_width", "max_line_count", "max_words_per_line"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UsageError(f"{parameter(name)} must be at least 1 (or none, for no limit)")
        for name in ("max_cue_s", "pause_s"):
            if not getattr(self, name) > 0:
                raise UsageError(f"{parameter(name)} must be more than 0 seconds")
        for name in ("min_gap_s", "max_linger_s"):
            if not getattr(self, name) >= 0:
                raise UsageError(f"{parameter(name)} cannot be negative")
        if not self.min_cue_s >= 0:
            raise UsageError(f"{parameter('min_cue_s')} cannot be negative")
        if not self.min_cue_s <= self.max_cue_s:  # named by the longest cue, the one a user sets (--max-cue-s)
            raise UsageError(
                f"{parameter('max_cue_s')} {self.max_cue_s:g} s is shorter than the shortest cue, {parameter('min_cue_s')} "
                f"{self.min_cue_s:g} s: give at least that"
            )
        if self.reading_cps is not None and not self.reading_cps > 0:
            raise UsageError(f"{parameter('reading_cps')} must be more than 0 characters a second (or none)")


READABLE = SubtitleOptions()


def _milliseconds(seconds: float) -> int:
    return round(seconds * 1000.0)


def format_timestamp(seconds: float, always_include_hours: bool = False, decimal_marker: str = ".") -> str:
    """HH:MM:SS.mmm, hours only when asked for or non-zero (whisper's rounding: to the millisecond)."""
    milliseconds = _milliseconds(seconds)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    whole_seconds, milliseconds = divmod(milliseconds, 1000)
    hours_part = f"{hours:02d}:" if always_include_hours or hours > 0 else ""
    return f"{hours_part}{minutes:02d}:{whole_seconds:02d}{decimal_marker}{milliseconds:03d}"


def display_width(text: str) -> int:
    """Characters a line shows: code points, less the combining marks drawn on the one before (so "é" is one
    character whether composed or not); bytes never count."""
    return sum(not unicodedata.combining(character) for character in text)


def speaker_label(speaker: str | None) -> str:
    """What SRT and TXT show before a segment's text to say who speaks: ``[face 1] ``; nothing without a speaker."""
    return f"[{speaker}] " if speaker else ""


def _speaker(segment) -> str | None:
    return getattr(segment, "speaker", None)  # transcripts made before speakers (and hand-made ones) have none


def _shown_word(word: Word) -> str:
    return word.word.replace("-->", "->")


def _line_text(line: Sequence[Word], underline: Word | None = None) -> str:
    parts = []
    for word in line:
        text = _shown_word(word)
        if word is underline:  # whisper's highlight: the word's surrounding spaces stay outside the tag
            core = text.strip()
            lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
            text = f"{lead}<u>{core}</u>{trail}"
        parts.append(text)
    return "".join(parts).strip()


@dataclass(frozen=True)
class Cue:
    """One subtitle: shown from ``start`` to ``end`` with ``text`` (lines joined by newlines). ``lines`` holds
    the words on each line; it is empty for a cue made from a segment without word timings. ``speaker`` is its
    segment's; ``label`` is shown before the first line (the speaker's, with ``speaker_labels``) and takes
    room on it."""

    start: float
    end: float
    text: str
    lines: tuple[tuple[Word, ...], ...] = ()
    speaker: str | None = None
    label: str = ""

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(word for line in self.lines for word in line)

    def with_underline(self, word: Word) -> str:
        """The cue's text with ``word`` (one of its own, by identity) underlined."""
        return "\n".join(_line_text(line, underline=word) for line in self.lines)


def _segment_text(text: str) -> str:
    return text.strip().replace("-->", "->")


def _fits(line: Sequence[Word], options: SubtitleOptions, indent: int = 0) -> bool:
    """``line`` fits after ``indent`` characters (a label) on it."""
    if len(line) == 1:
        return True
    if options.max_words_per_line is not None and len(line) > options.max_words_per_line:
        return False
    return options.max_line_width is None or indent + display_width(_line_text(line)) <= options.max_line_width


def _balanced_lines(words: list[Word], count: int, options: SubtitleOptions, indent: int = 0) -> list[list[Word]]:
    """``words`` over ``count`` lines that each fit, the first after ``indent`` characters, with the longest line
    as short as can be (two similar lines, not a full one over a stub); of equal layouts, the one with the
    shorter top line (the bottom-heavy shape the style guides prefer)."""
    best: dict[tuple[int, int], tuple[int, list[int]]] = {}  # (first word, lines) -> (longest line, where lines break)

    def layout(first: int, lines: int) -> tuple[int, list[int]] | None:
        if (first, lines) in best:
            return best[first, lines]
        found = None
        taken = indent if first == 0 else 0  # only the cue's first line starts at word 0
        if lines == 1:
            if _fits(words[first:], options, taken):
                found = (taken + display_width(_line_text(words[first:])), [])
        else:
            for cut in range(first + 1, len(words) - lines + 2):
                if not _fits(words[first:cut], options, taken):
                    break
                rest = layout(cut, lines - 1)
                if rest is not None:
                    longest = max(taken + display_width(_line_text(words[first:cut])), rest[0])
                    if found is None or longest < found[0]:
                        found = (longest, [cut, *rest[1]])
        best[first, lines] = found
        return found

    chosen = layout(0, count)
    assert chosen is not None, "greedy filling found this many lines, so a layout exists"
    bounds = [0, *chosen[1], len(words)]
    return [words[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def _segment_cues(words: list[Word], options: SubtitleOptions, indent: int = 0) -> Iterator[list[list[Word]]]:
    """Greedy filling, word by word: the next word goes on the current line if it fits (a cue's first line after
    ``indent`` characters), else on a new line if the cue has room for one, else it starts a new cue; a long
    pause or the cue's length limit starts one too."""
    lines: list[list[Word]] = []
    for word in words:
        if lines:
            pause = word.start - lines[-1][-1].end > options.pause_s
            too_long = word.end - lines[0][0].start > options.max_cue_s
            if not pause and not too_long:
                if _fits([*lines[-1], word], options, indent if len(lines) == 1 else 0):
                    lines[-1].append(word)
                    continue
                if options.max_line_count is None or len(lines) < options.max_line_count:
                    lines.append([word])
                    continue
            yield lines
        lines = [[word]]
    if lines:
        yield lines


def subtitle_cues(segments: Sequence, options: SubtitleOptions = READABLE) -> list[Cue]:
    """The cues that show ``segments`` (in time order): a segment with words is cut into cues at word
    boundaries under ``options``, one without is one cue over the segment (its start to its end, as today's
    and whisper's files).

    A word cue runs from its first word's start to its last word's end, so it never shows before its speech;
    it never spans two segments. Its end is then held longer into the silence that follows, to reach
    ``min_cue_s`` and the reading speed, but never past ``max_cue_s`` or ``max_linger_s`` after its last word,
    and never closer than ``min_gap_s`` to the next cue (when the words themselves are closer, the gap is what
    they leave: a cue never ends before its last word does, except where the next cue's words overlap it).

    Each cue carries its segment's ``speaker``. With ``speaker_labels``, its ``label`` is the speaker's label as
    SRT shows it, counted in the first line's width and in the reading time: the style guides' limits are on
    the characters shown, and a viewer reads the label too.
    """
    built: list[Cue] = []
    for segment in segments:
        speaker = _speaker(segment)
        label = speaker_label(speaker) if options.speaker_labels else ""
        words = list(getattr(segment, "words", None) or [])
        if not words:
            built.append(Cue(segment.start, segment.end, _segment_text(segment.text), speaker=speaker, label=label))
            continue
        indent = display_width(label)
        for lines in _segment_cues([word for word in words if word.word.strip()], options, indent):
            cue_words = [word for line in lines for word in line]
            balanced = tuple(tuple(line) for line in _balanced_lines(cue_words, len(lines), options, indent))
            text = "\n".join(_line_text(line) for line in balanced)
            built.append(Cue(cue_words[0].start, cue_words[-1].end, text, balanced, speaker, label))
    return [_held(cue, built[k + 1] if k + 1 < len(built) else None, options) for k, cue in enumerate(built)]


def _held(cue: Cue, following: Cue | None, options: SubtitleOptions) -> Cue:
    if not cue.lines:  # a segment's cue keeps the segment's times
        return cue
    spoken_end = cue.end
    shown = display_width(cue.label + cue.text.replace("\n", ""))
    wanted = max(options.min_cue_s, shown / options.reading_cps if options.reading_cps else 0.0)
    end = min(cue.start + wanted, cue.start + options.max_cue_s, spoken_end + options.max_linger_s)
    if following is not None:
        end = min(end, following.start - options.min_gap_s)
    end = max(end, spoken_end)
    if following is not None:
        end = min(end, following.start)  # words that overlap the next cue's: cut, so cues never overlap
    return replace(cue, end=end)


def _shown(cues: list[Cue], options: SubtitleOptions) -> Iterator[tuple[Cue, float, float, str]]:
    """(cue, start, end, text) as written: each cue, or with ``highlight_words`` one cue per word with that word
    underlined, the stretches between words (and after the last, while the cue is held) showing the plain text."""
    for cue in cues:
        if not (options.highlight_words and cue.lines):
            yield cue, cue.start, cue.end, cue.text
            continue
        shown_until = cue.start
        for word in cue.words:
            if _milliseconds(word.start) > _milliseconds(shown_until):
                yield cue, shown_until, word.start, cue.text
            if _milliseconds(word.end) > _milliseconds(word.start):
                yield cue, word.start, word.end, cue.with_underline(word)
                shown_until = word.end
        if _milliseconds(cue.end) > _milliseconds(shown_until):
            yield cue, shown_until, cue.end, cue.text


def check_cues(cues: Sequence[Cue], options: SubtitleOptions = READABLE) -> list[str]:
    """What is wrong with ``cues`` under ``options``, one line per problem (empty when nothing is): a line
    wider (the first with the cue's label) or a cue with more lines or words per line than allowed (a single
    word alone on its line is exempt from the width), a cue longer than ``max_cue_s`` (but for one word that
    long), a word outside its cue's time, a cue that shows for no time or overlaps the one before, and a gap
    under ``min_gap_s`` that the silence between the words left room for. Cues made from segments without
    words are checked only for time order, as their times are the segments'."""
    problems: list[str] = []
    tolerance = 1e-6  # seconds: float sums, far below the millisecond the files show
    previous: Cue | None = None
    for number, cue in enumerate(cues, start=1):
        where = f"cue {number} ({format_timestamp(cue.start)} --> {format_timestamp(cue.end)})"
        if cue.lines:
            if cue.end <= cue.start:
                problems.append(f"{where}: shows for no time")
            if options.max_line_count is not None and len(cue.lines) > options.max_line_count:
                problems.append(f"{where}: {len(cue.lines)} lines, over {options.max_line_count}")
            if len(cue.text.split("\n")) != len(cue.lines):
                problems.append(f"{where}: its text is not its lines of words")
            for line_number, (line, text) in enumerate(zip(cue.lines, cue.text.split("\n"), strict=False), start=1):
                if not text.strip():
                    problems.append(f"{where}: line {line_number} is blank")
                width = display_width((cue.label if line_number == 1 else "") + text)
                if options.max_line_width is not None and len(line) > 1 and width > options.max_line_width:
                    problems.append(f"{where}: line {line_number} is {width} characters, over {options.max_line_width}")
                if options.max_words_per_line is not None and len(line) > options.max_words_per_line:
                    problems.append(f"{where}: line {line_number} has {len(line)} words, over {options.max_words_per_line}")
            if len(cue.words) > 1 and cue.end - cue.start > options.max_cue_s + tolerance:
                problems.append(f"{where}: {cue.end - cue.start:.3f} s, over {options.max_cue_s} s")
            for word in cue.words:
                if word.start < cue.start or word.end > cue.end:
                    problems.append(f"{where}: word {word.word.strip()!r} at {word.start:.3f}-{word.end:.3f} s is outside it")
        if previous is not None:
            if cue.start < previous.end:
                problems.append(f"{where}: overlaps the cue before, which ends at {format_timestamp(previous.end)}")
            elif previous.lines and previous.end > previous.words[-1].end and cue.start - previous.end < options.min_gap_s - tolerance:
                problems.append(f"{where}: {cue.start - previous.end:.3f} s after the cue before, under {options.min_gap_s} s")
        previous = cue
    return problems


def write_txt(transcript, subtitles: SubtitleOptions = READABLE) -> str:
    def label(segment) -> str:
        return speaker_label(_speaker(segment)) if subtitles.speaker_labels else ""

    return "".join(label(segment) + segment.text.strip() + "\n" for segment in transcript.segments)


def write_srt(transcript, subtitles: SubtitleOptions = READABLE) -> str:
    cues = []
    shown_cues = _shown(subtitle_cues(transcript.segments, subtitles), subtitles)
    for number, (cue, start, end, text) in enumerate(shown_cues, start=1):
        shown = f"{format_timestamp(start, always_include_hours=True, decimal_marker=',')} --> "
        shown += format_timestamp(end, always_include_hours=True, decimal_marker=",")
        cues.append(f"{number}\n{shown}\n{cue.label}{text}\n\n")
    return "".join(cues)


def write_vtt(transcript, subtitles: SubtitleOptions = READABLE) -> str:
    # The speaker is a WebVTT voice span, not text: a player shows the voice's name only through styling, so it
    # takes no room on a line and the cues are cut as without labels.
    cues = subtitle_cues(transcript.segments, replace(subtitles, speaker_labels=False))

    def payload(cue: Cue, text: str) -> str:
        # <v face 1> before the text: the span covers every line and the <u> inside; its end tag may be left out
        # as the span is the cue text's only component (WebVTT, "cue voice span").
        return f"<v {cue.speaker}>{text}" if subtitles.speaker_labels and cue.speaker else text

    return "WEBVTT\n\n" + "".join(
        f"{format_timestamp(start)} --> {format_timestamp(end)}\n{payload(cue, text)}\n\n"
        for cue, start, end, text in _shown(cues, subtitles)
    )


def write_tsv(transcript, subtitles: SubtitleOptions = READABLE) -> str:
    # Integer milliseconds, as whisper does, so no locale ever writes a decimal comma.
    rows = [f"{round(1000 * s.start)}\t{round(1000 * s.end)}\t{s.text.strip().replace(chr(9), ' ')}\n" for s in transcript.segments]
    return "start\tend\ttext\n" + "".join(rows)


def json_text(data) -> str:
    """JSON with non-ASCII kept as is, and every lone surrogate as its ``\\udcXX`` escape, so the text always
    encodes: a file name that is not UTF-8 reaches Python as such surrogates (os.fsdecode), and json.loads
    then os.fsencode give its bytes back."""
    return json.dumps(data, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")


def write_json(transcript, subtitles: SubtitleOptions = READABLE) -> str:
    return json_text(transcript.to_dict())


def write_jsonl(transcript, subtitles: SubtitleOptions = READABLE) -> str:
    return "".join(json_text(line) + "\n" for line in transcript.segment_lines())


# Each takes (transcript, subtitles=READABLE): only srt and vtt use the subtitle options.
WRITERS: dict[str, Callable[..., str]] = {
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
    if "all" in names:
        raise ValueError(f"{value}: all means every format, so give it alone")
    unknown = [name for name in names if name not in WRITERS]
    if unknown or not names:
        raise ValueError(f"unknown output format {', '.join(unknown) or repr(value)}; choose from {', '.join(FORMATS)} or all")
    return list(dict.fromkeys(names))


def output_path(out_dir: Path, clip_id: str, fmt: str) -> Path:
    stem = out_dir / clip_id
    return stem.with_name(f"{stem.name}.{fmt}")


def write_outputs(transcript, out_dir: Path, clip_id: str, formats: list[str], subtitles: SubtitleOptions = READABLE) -> list[Path]:
    """Write every format beside the others, each atomically; SRT and VTT cues follow ``subtitles``."""
    written = []
    for fmt in formats:
        path = output_path(out_dir, clip_id, fmt)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, WRITERS[fmt](transcript, subtitles))
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
    """Where a run's outputs go: ``DIR/<id>.<fmt>`` for each format and one line per input in ``DIR/run.jsonl``
    (or ``DIR/<log>``: each shard of a job array keeps its own)."""

    LOG = "run.jsonl"

    def __init__(self, directory: Path, formats: list[str], subtitles: SubtitleOptions = READABLE, log: str = LOG):
        self.directory, self.formats, self.subtitles, self.log_name = directory, formats, subtitles, log

    @property
    def log_path(self) -> Path:
        return self.directory / self.log_name

    def paths(self, clip_id: str) -> list[Path]:
        return [output_path(self.directory, clip_id, fmt) for fmt in self.formats]

    def finished(self, clip_id: str) -> bool:
        """Every output of this input is there (a run killed part way is resumed from the others)."""
        return all(path.is_file() for path in self.paths(clip_id))

    def write(self, transcript) -> list[Path]:
        return write_outputs(transcript, self.directory, transcript.id, self.formats, self.subtitles)

    def log(self, record: RunRecord) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(record.to_json() + "\n")
