"""The writers lay files out exactly as openai/whisper does, and cut subtitles from word timings.

The golden files in tests/data/writers were written by whisper 20250625's own writer classes
(whisper/utils.py) from segments.json; the JSON and jsonl layouts are ours and checked by their keys. Cues
from words are checked on hand-made transcripts against the limits of SubtitleOptions.
"""

import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from omniavsr_cli.errors import UsageError
from omniavsr_cli.writers import (
    FORMATS,
    Cue,
    OutputFolder,
    SubtitleOptions,
    Word,
    check_cues,
    display_width,
    format_timestamp,
    parse_formats,
    subtitle_cues,
    write_outputs,
    write_srt,
    write_vtt,
)

DATA = Path(__file__).parent / "data" / "writers"


@dataclass
class _Segment:
    start: float
    end: float
    text: str


class _Transcript:
    def __init__(self, segments):
        self.segments = segments

    def to_dict(self):
        return {"text": " ".join(s.text.strip() for s in self.segments), "segments": [vars(s) for s in self.segments]}

    def segment_lines(self):
        return [{"input": "x", **vars(s)} for s in self.segments]


@pytest.fixture
def transcript():
    return _Transcript(
        [_Segment(s["start"], s["end"], s["text"]) for s in json.loads((DATA / "segments.json").read_text(encoding="utf-8"))]
    )


@pytest.mark.parametrize("fmt", ["txt", "srt", "vtt", "tsv"])
def test_subtitle_and_text_files_match_whisper_byte_for_byte(fmt, transcript, tmp_path):
    [path] = write_outputs(transcript, tmp_path, "talks/one", [fmt])
    assert path == tmp_path / "talks" / f"one.{fmt}"
    assert path.read_bytes() == (DATA / f"golden.{fmt}").read_bytes()


@pytest.mark.parametrize("options", [SubtitleOptions(), SubtitleOptions(highlight_words=True, speaker_labels=True)])
def test_a_transcript_without_speech_gives_whispers_empty_files(options, tmp_path):
    """A silent input has no segments: its files are what whisper writes then (a header at most), not an error."""
    assert subtitle_cues([], options) == []
    paths = write_outputs(_Transcript([]), tmp_path, "silent", ["txt", "srt", "vtt", "tsv"], options)
    assert [path.read_text(encoding="utf-8") for path in paths] == ["", "", "WEBVTT\n\n", "start\tend\ttext\n"]


def test_json_keeps_non_ascii_text_and_jsonl_has_one_segment_per_line(transcript, tmp_path):
    paths = write_outputs(transcript, tmp_path, "one", ["json", "jsonl"])
    text = paths[0].read_text(encoding="utf-8")
    assert "日本語" in text and "\\u" not in text
    lines = paths[1].read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["text"] for line in lines] == [s.text for s in transcript.segments]


def test_timestamps_round_to_the_millisecond_and_show_hours_only_when_needed():
    assert format_timestamp(0.0) == "00:00.000"
    assert format_timestamp(59.9996) == "01:00.000"
    assert format_timestamp(3723.5, always_include_hours=True, decimal_marker=",") == "01:02:03,500"
    assert format_timestamp(3723.5) == "01:02:03.500"


def test_formats_parse_from_a_comma_list_or_all():
    assert parse_formats("srt, JSON,srt") == ["srt", "json"]
    assert parse_formats("all") == list(FORMATS)
    with pytest.raises(ValueError, match="docx"):
        parse_formats("srt,docx")
    with pytest.raises(ValueError, match="all,srt: all means every format, so give it alone"):
        parse_formats("all,srt")


def test_a_failed_write_leaves_no_partial_file(transcript, tmp_path):
    (tmp_path / "one.srt").mkdir()  # the target path is taken by a directory
    with pytest.raises(OSError):
        write_outputs(transcript, tmp_path, "one", ["txt", "srt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.srt", "one.txt"]
    assert not list(tmp_path.glob("*.part"))


def test_a_file_name_that_is_not_utf8_is_escaped_in_json_and_comes_back(tmp_path):
    import os

    name = os.fsdecode(b"caf\xe9")  # what Python makes of such a name: a lone surrogate

    class Named(_Transcript):
        def to_dict(self):
            return {**super().to_dict(), "id": name}

        def segment_lines(self):
            return [{**line, "input": name} for line in super().segment_lines()]

    for path in write_outputs(Named([_Segment(0.0, 1.0, "café")]), tmp_path, "one", ["json", "jsonl"]):
        data = json.loads(path.read_bytes().decode("utf-8").splitlines()[0])
        assert os.fsencode(data.get("id", data.get("input"))) == b"caf\xe9" and "café" in data["text"]


# --------------------------------------------------------------------------------- cues from word timings


@dataclass
class _TimedSegment:
    start: float
    end: float
    text: str
    words: list[Word] | None


def _words(text: str, start: float, seconds_per_char: float = 0.06, pause: float = 0.05) -> list[Word]:
    """Words said one after another from ``start``, each as long as its letters, ``pause`` apart."""
    words, t = [], start
    for token in text.split():
        duration = 0.1 + seconds_per_char * display_width(token)
        words.append(Word(" " + token, round(t, 3), round(t + duration, 3), 0.9))
        t += duration + pause
    return words


def _segment(words: list[Word], pad: float = 0.4) -> _TimedSegment:
    return _TimedSegment(max(0.0, words[0].start - pad), words[-1].end + pad, "".join(w.word for w in words), words)


def _long_transcript(seed: int) -> _Transcript:
    """Segments of 1-60 words of 1-16 letters (some accented, decomposed, CJK, one longer than any line), said
    at varied speeds with pauses of up to 2.5 s inside a segment, and chunks 0.5-3 s apart."""
    rng = random.Random(seed)
    alphabet = ["a", "e", "s", "t", "n", "é", "e\u0301", "ü", "日", "本"]
    segments, t = [], 0.3
    for _ in range(25):
        words = []
        for _ in range(rng.randint(1, 60)):
            letters = "".join(rng.choice(alphabet) for _ in range(rng.choice([1, 2, 3, 5, 8, 16] if rng.random() > 0.01 else [50])))
            duration = rng.uniform(0.05, 0.7)
            words.append(Word(" " + letters, round(t, 3), round(t + duration, 3), rng.random()))
            t += duration + (rng.choice([0.0, 0.02, 0.1, 0.3, 1.2, 2.5]) if rng.random() < 0.3 else 0.0)
        segments.append(_segment(words))
        t += rng.uniform(0.5, 3.0)
    return _Transcript(segments)


OPTION_SETS = [
    SubtitleOptions(),
    SubtitleOptions(max_line_width=16, max_line_count=1, max_cue_s=3.0),
    SubtitleOptions(max_line_width=None, max_words_per_line=3, max_line_count=3, min_gap_s=0.2),
    SubtitleOptions(max_line_width=30, max_words_per_line=4, pause_s=0.25, reading_cps=None, min_cue_s=2.0),
]


@pytest.mark.parametrize("options", OPTION_SETS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cues_from_words_keep_every_limit_and_every_word_inside_its_cue(options, seed):
    transcript = _long_transcript(seed)
    cues = subtitle_cues(transcript.segments, options)
    assert check_cues(cues, options) == []
    # Each segment's words, in order, are exactly the words of a run of cues of its own.
    remaining = [list(s.words) for s in transcript.segments]
    for cue in cues:
        assert list(cue.words) == remaining[0][: len(cue.words)], "a cue spans two segments or reorders words"
        del remaining[0][: len(cue.words)]
        if not remaining[0]:
            remaining.pop(0)
        assert cue.start == cue.words[0].start and cue.words[-1].end <= cue.end  # never before its speech
        assert cue.text.split("\n") == ["".join(w.word for w in line).strip() for line in cue.lines]
    assert remaining == []
    assert all(later.start >= earlier.end for earlier, later in zip(cues, cues[1:], strict=False))
    assert any(len(cue.lines) > 1 for cue in cues) == (options.max_line_count != 1)


def test_a_line_breaks_at_the_width_counted_in_characters_not_bytes():
    options = SubtitleOptions(max_line_width=10, max_line_count=5)
    composed = _words("café café café", 0.0)  # 14 characters with spaces: two lines
    decomposed = [Word(w.word.replace("é", "e\u0301"), w.start, w.end, w.probability) for w in composed]
    cjk = _words("日本語 日本語 日本語", 0.0)  # 11 characters, 29 bytes
    for words in (composed, decomposed, cjk):
        [cue] = subtitle_cues([_segment(words)], options)
        assert [len(line) for line in cue.lines] == [1, 2] or [len(line) for line in cue.lines] == [2, 1]
        assert check_cues([cue], options) == []
    assert display_width("cafe\u0301") == display_width("café") == 4 and display_width("日本語") == 3


def test_lines_are_balanced_and_a_word_wider_than_a_line_gets_a_line_of_its_own():
    [cue] = subtitle_cues([_segment(_words("one two three four five six seven eight nine", 0.0))], SubtitleOptions(max_line_width=30))
    assert cue.text == "one two three four five\nsix seven eight nine"  # 23 and 20 characters, not greedy's 27 and 16
    long = "x" * 50
    [cue] = subtitle_cues([_segment(_words(f"a {long} b", 0.0))], SubtitleOptions(max_line_width=42, max_line_count=3))
    assert cue.text == f"a\n{long}\nb"
    assert check_cues([cue], SubtitleOptions(max_line_width=42, max_line_count=3)) == []


def test_a_long_pause_the_cue_length_and_the_line_count_start_new_cues():
    said = _words("hello there", 0.0) + _words("again", 3.0)
    assert [c.text for c in subtitle_cues([_segment(said)])] == ["hello there", "again"]  # 2 s pause > pause_s
    assert [c.text for c in subtitle_cues([_segment(said)], SubtitleOptions(pause_s=3.0))] == ["hello there again"]
    slow = _words("a b c d e f g h i j", 0.0, seconds_per_char=0.9, pause=0.1)  # a word a second
    cues = subtitle_cues([_segment(slow)])
    assert [len(c.words) for c in cues] == [6, 4] and all(c.end - c.start <= 7.0 for c in cues)  # the 7th word ends at 7.6 s
    counted = subtitle_cues([_segment(_words("one two three four five six", 0.0))], SubtitleOptions(max_words_per_line=2, max_line_count=2))
    assert [c.text for c in counted] == ["one two\nthree four", "five six"]


def test_a_cue_is_held_for_reading_but_keeps_the_gap_and_never_overlaps():
    first = [Word(" Hi", 1.0, 1.2, 0.9)]
    near = [Word(" you", 1.5, 1.8, 0.9)]
    far = [Word(" there", 5.0, 5.4, 0.9)]
    held, after = subtitle_cues([_segment(first), _segment(far)])
    assert held.start == 1.0 and held.end == pytest.approx(1.0 + 5 / 6)  # the shortest cue, in the silence after it
    cut, _ = subtitle_cues([_segment(first), _segment(near)])
    assert cut.end == pytest.approx(1.5 - 0.08)  # held only up to the gap before the next cue
    abutting = [Word(" you", 1.2, 1.5, 0.9)]
    touching, _ = subtitle_cues([_segment(first), _segment(abutting)])
    assert touching.end == 1.2  # no silence to make a gap in: the cue still ends with its word
    quick = _words("a line said quickly", 0.0, seconds_per_char=0.01, pause=0.0)  # 19 characters in 0.5 s
    [cue] = subtitle_cues([_segment(quick)])
    assert quick[-1].end < 0.6 and cue.end == pytest.approx(19 / 20)  # up long enough to read at 20 characters a second
    rushed = _words("two full lines of words said far faster than anyone could read them at ease", 0.0, seconds_per_char=0.01, pause=0)
    [cue] = subtitle_cues([_segment(rushed)])
    assert cue.end == pytest.approx(rushed[-1].end + 1.5)  # but never more than 1.5 s after the speech
    assert check_cues([held, after]) == [] and check_cues([cut]) == [] and check_cues([touching, _]) == []


def test_highlight_words_underlines_each_word_in_turn_and_fills_the_gaps():
    words = [Word(" Hello", 1.0, 1.4, 0.9), Word(" big", 1.6, 1.8, 0.9), Word(" world", 1.8, 2.2, 0.9)]
    transcript = _Transcript([_segment(words), _Segment(5.0, 6.0, " plain")])
    options = SubtitleOptions(highlight_words=True, max_line_width=10, min_cue_s=0.0, reading_cps=None)
    assert write_srt(transcript, options) == (
        "1\n00:00:01,000 --> 00:00:01,400\n<u>Hello</u>\nbig world\n\n"
        "2\n00:00:01,400 --> 00:00:01,600\nHello\nbig world\n\n"
        "3\n00:00:01,600 --> 00:00:01,800\nHello\n<u>big</u> world\n\n"
        "4\n00:00:01,800 --> 00:00:02,200\nHello\nbig <u>world</u>\n\n"
        "5\n00:00:05,000 --> 00:00:06,000\nplain\n\n"
    )
    assert write_vtt(transcript, options).startswith("WEBVTT\n\n00:01.000 --> 00:01.400\n<u>Hello</u>\nbig world\n\n")


def test_segments_without_words_are_written_as_before(transcript, tmp_path):
    for words in (None, []):
        wordless = _Transcript([_TimedSegment(s.start, s.end, s.text, words) for s in transcript.segments])
        for fmt in ("srt", "vtt"):
            [path] = write_outputs(wordless, tmp_path, "one", [fmt], SubtitleOptions(max_line_width=5, highlight_words=True))
            assert path.read_bytes() == (DATA / f"golden.{fmt}").read_bytes()


def test_output_folder_writes_subtitles_with_its_options_and_text_per_segment(tmp_path):
    timed = _Transcript([_segment(_words("one two three four five six", 0.0))])
    timed.id = "talk"
    folder = OutputFolder(tmp_path, ["srt", "txt", "tsv"], SubtitleOptions(max_line_width=8, max_line_count=1))
    srt, txt, tsv = folder.write(timed)
    assert [block.split("\n")[2] for block in srt.read_text().strip().split("\n\n")] == ["one two", "three", "four", "five six"]
    assert txt.read_text() == "one two three four five six\n" and len(tsv.read_text().splitlines()) == 2


def test_the_checker_names_each_problem():
    options = SubtitleOptions(max_line_width=10, max_line_count=1, max_words_per_line=2, max_cue_s=2.0, min_gap_s=0.1)
    a, b, c = Word(" aaaaaa", 0.0, 0.5, 1.0), Word(" bbbbbb", 0.5, 1.0, 1.0), Word(" c", 1.0, 2.6, 1.0)
    cues = [
        Cue(0.0, 2.6, "aaaaaa bbbbbb c", ((a, b, c),)),  # wide, 3 words, 2.6 s
        Cue(2.65, 2.9, "aaaaaa\nbbbbbb", ((Word(" aaaaaa", 2.65, 2.7, 1.0),), (Word(" bbbbbb", 2.7, 3.2, 1.0),))),  # 2 lines, word out
        Cue(2.8, 3.0, "c", ((Word(" c", 2.8, 2.9, 1.0),),)),  # overlaps
        Cue(3.0, 3.0, "c", ((Word(" c", 3.0, 3.0, 1.0),),)),  # no time, held... and 0 s after one held past its word
    ]
    problems = "\n".join(check_cues(cues, options))
    for expected in ("15 characters, over 10", "3 words, over 2", "2.600 s, over 2.0 s", "2 lines, over 1", "'bbbbbb' at 2.700-3.200",
                     "overlaps the cue before", "shows for no time", "0.000 s after the cue before, under 0.1 s"):  # fmt: skip
        assert expected in problems
    assert "cue 1 (00:00.000 --> 00:02.600): line 1 is 15 characters, over 10" in problems
    assert check_cues([Cue(0.0, 1.0, "a b", ((a,), (b,)))]) == ["cue 1 (00:00.000 --> 00:01.000): its text is not its lines of words"]
    assert check_cues([Cue(0.0, 9.0, "x" * 50, ((Word(" " + "x" * 50, 0.0, 9.0, 1.0),),))], options) == []  # one word: exempt


@pytest.mark.parametrize(
    ("changes", "name"),
    [({"max_line_width": 0}, "max_line_width"), ({"max_cue_s": 0}, "max_cue_s"), ({"min_cue_s": 8.0}, "min_cue_s"),
     ({"min_gap_s": -1}, "min_gap_s"), ({"reading_cps": 0}, "reading_cps"), ({"min_cue_s": -1}, "^min_cue_s cannot be negative"),
     ({"max_cue_s": 1e-9}, "^max_cue_s 1e-09 s is shorter than the shortest cue, min_cue_s 0.833333 s: give at least that")],
)  # fmt: skip
def test_subtitle_options_reject_values_that_cannot_work(changes, name):
    with pytest.raises(UsageError, match=name):
        SubtitleOptions(**changes)


def test_words_are_written_as_whisper_lays_them_out_and_match_the_schema():
    import jsonschema

    word = Word(" hello", 1.0, 1.32, 0.875)
    assert list(word.to_dict().items()) == [("word", " hello"), ("start", 1.0), ("end", 1.32), ("probability", 0.875)]
    schema = json.loads((Path(__file__).parents[1] / "omniavsr_cli" / "transcript.schema.json").read_text())
    segment_schema = {"$ref": "#/$defs/segment", "$defs": schema["$defs"]}
    segment = {"id": 0, "seek": 100, "start": 1.0, "end": 2.0, "text": " hello", "tokens": [1], "temperature": 0.0, "mode": "asr",
               "rates": [4, 2], "face_coverage": None, "speaker": None, "face_box": None, "flags": []}  # fmt: skip
    jsonschema.validate(segment, segment_schema)  # words are optional: old transcripts have none
    jsonschema.validate({**segment, "words": [word.to_dict()]}, segment_schema)
    for broken in ({"word": " hello", "start": 1.0, "end": 1.32}, {**word.to_dict(), "probability": 1.5}, {**word.to_dict(), "start": -1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**segment, "words": [broken]}, segment_schema)
