"""Who is speaking, in the files: with ``speaker_labels`` SRT cues and TXT lines start with ``[face 1] `` (or
``[off-screen] ``), VTT cues are WebVTT voice spans; the label takes room on an SRT line but not in VTT; TSV and
JSON do not change; the JSON schema knows ``speaker``, ``face_box`` and the ``off_screen`` flag.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from omniavsr_cli.writers import (
    Cue,
    SubtitleOptions,
    Word,
    check_cues,
    speaker_label,
    subtitle_cues,
    write_json,
    write_srt,
    write_tsv,
    write_txt,
    write_vtt,
)

SCHEMA = json.loads((Path(__file__).parents[1] / "omniavsr_cli" / "transcript.schema.json").read_text())
LABELLED = SubtitleOptions(speaker_labels=True)


@dataclass
class _Segment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    speaker: str | None = None


@dataclass
class _Transcript:
    segments: list


def _said(text: str, start: float, speaker: str | None) -> _Segment:
    """A segment whose words are said 0.3 s each, 0.05 s apart, from ``start``."""
    words = [Word(" " + token, round(start + 0.35 * i, 3), round(start + 0.35 * i + 0.3, 3), 0.9) for i, token in enumerate(text.split())]
    return _Segment(words[0].start, words[-1].end, "".join(w.word for w in words), words, speaker)


def _blocks(srt: str) -> list[list[str]]:
    return [block.split("\n")[2:] for block in srt.strip().split("\n\n")]


def test_srt_and_txt_start_each_cue_and_line_with_the_speaker_and_vtt_makes_it_a_voice():
    transcript = _Transcript(
        [
            _said("hello there", 0.0, "face 1"),
            _said("hi", 2.0, "face 2"),
            _said("who said that", 4.0, "off-screen"),
            _said("no video", 6.0, None),
        ]
    )
    assert [lines[0] for lines in _blocks(write_srt(transcript, LABELLED))] == [
        "[face 1] hello there",
        "[face 2] hi",
        "[off-screen] who said that",
        "no video",
    ]
    vtt = write_vtt(transcript, LABELLED)
    assert [block.split("\n")[1] for block in vtt.split("\n\n")[1:-1]] == [
        "<v face 1>hello there",
        "<v face 2>hi",
        "<v off-screen>who said that",
        "no video",
    ]
    assert write_txt(transcript, LABELLED) == "[face 1] hello there\n[face 2] hi\n[off-screen] who said that\nno video\n"
    assert speaker_label("face 12") == "[face 12] " and speaker_label(None) == ""


def test_without_the_option_the_files_are_what_they_were_without_speakers():
    spoken = [_said("hello there", 0.0, "face 1"), _said("hi", 2.0, "off-screen")]
    unnamed = [_Segment(s.start, s.end, s.text, s.words) for s in spoken]
    for write in (write_srt, write_vtt, write_txt, write_tsv):
        assert write(_Transcript(spoken)) == write(_Transcript(unnamed)) == write(_Transcript(unnamed), LABELLED)
    assert "face" not in write_srt(_Transcript(spoken)) + write_vtt(_Transcript(spoken)) + write_txt(_Transcript(spoken))


def test_tsv_is_unchanged_and_json_always_carries_speaker_and_face_box():
    import jsonschema

    from omniavsr_cli.transcribe import Segment, Transcript

    def segment(id, start, speaker, box):
        return Segment(id, start, start + 1.0, " hi", [1], "avsr", [4, 2], 1.0, speaker=speaker, face_box=box)

    transcript = Transcript(
        "talk", "talk.mp4", [segment(0, 0.0, "face 1", [10.0, 20.0, 110.0, 140.0]), segment(1, 2.0, "off-screen", None)], {}
    )
    assert write_tsv(transcript, LABELLED) == write_tsv(transcript)
    assert write_json(transcript, LABELLED) == write_json(transcript)
    segments = json.loads(write_json(transcript))["segments"]
    assert [(s["speaker"], s["face_box"]) for s in segments] == [("face 1", [10.0, 20.0, 110.0, 140.0]), ("off-screen", None)]
    assert list(segments[0])[list(segments[0]).index("face_coverage") + 1 :][:2] == ["speaker", "face_box"]
    for document in segments:
        jsonschema.validate(document, {"$ref": "#/$defs/segment", "$defs": SCHEMA["$defs"]})


def test_the_srt_label_takes_room_on_the_first_line_and_the_vtt_voice_does_not():
    options = SubtitleOptions(max_line_width=20, speaker_labels=True)
    transcript = _Transcript([_said("one two three four", 0.0, "face 1")])  # 18 characters: one line alone, not after "[face 1] "
    assert _blocks(write_srt(transcript, options)) == [["[face 1] one", "two three four"]]  # 12 and 14 shown, balanced
    assert write_vtt(transcript, options).split("\n")[3:5] == ["<v face 1>one two three four", ""]
    [cue] = subtitle_cues(transcript.segments, options)
    assert cue.label == "[face 1] " and check_cues([cue], options) == []
    # The checker counts the label: the same words on one line, labelled, are over the width.
    too_wide = Cue(0.0, 1.35, "one two three four", (cue.words,), "face 1", "[face 1] ")
    assert check_cues([too_wide], options) == ["cue 1 (00:00.000 --> 00:01.350): line 1 is 27 characters, over 20"]


def test_every_word_cue_has_one_speaker_its_segments_and_keeps_every_limit_with_its_label():
    speakers = ["face 1", "face 2", "off-screen", None]
    segments = [_said(" ".join(["word"] * (3 + 7 * i % 19)), 20.0 * i, speakers[i % 4]) for i in range(12)]
    for options in (LABELLED, SubtitleOptions(max_line_width=16, max_line_count=1, speaker_labels=True)):
        cues = subtitle_cues(segments, options)
        assert check_cues(cues, options) == []
        for cue in cues:
            [owner] = [s for s in segments if cue.words[0] in s.words]
            assert set(cue.words) <= set(owner.words), "a cue mixes two segments"
            assert cue.speaker == owner.speaker and cue.label == speaker_label(owner.speaker)
        # The SRT shows each cue's label and lines exactly as checked.
        assert _blocks(write_srt(_Transcript(segments), options)) == [(cue.label + cue.text).split("\n") for cue in cues]


def test_a_segment_without_word_timings_is_one_labelled_cue():
    transcript = _Transcript([_Segment(1.0, 3.0, " hello there", [], "face 2"), _Segment(4.0, 5.0, " hm", None, "off-screen")])
    assert write_srt(transcript, LABELLED) == (
        "1\n00:00:01,000 --> 00:00:03,000\n[face 2] hello there\n\n2\n00:00:04,000 --> 00:00:05,000\n[off-screen] hm\n\n"
    )
    assert (
        write_vtt(transcript, LABELLED)
        == "WEBVTT\n\n00:01.000 --> 00:03.000\n<v face 2>hello there\n\n00:04.000 --> 00:05.000\n<v off-screen>hm\n\n"
    )


def test_highlighted_words_stay_inside_the_label_and_the_voice_span():
    words = [Word(" Hello", 1.0, 1.4, 0.9), Word(" big", 1.6, 1.8, 0.9), Word(" world", 1.8, 2.2, 0.9)]
    transcript = _Transcript([_Segment(1.0, 2.2, " Hello big world", words, "face 1")])
    options = SubtitleOptions(highlight_words=True, max_line_width=10, min_cue_s=0.0, reading_cps=None, speaker_labels=True)
    assert _blocks(write_srt(transcript, options)) == [
        ["[face 1] <u>Hello</u>", "big world"],
        ["[face 1] Hello", "big world"],
        ["[face 1] Hello", "<u>big</u> world"],
        ["[face 1] Hello", "big <u>world</u>"],
    ]
    # The voice's start tag opens the cue text and covers both lines; its end tag is left out, as WebVTT allows
    # when the span is the cue text's only component. The width (10) is met without the voice's name.
    assert write_vtt(transcript, options) == (
        "WEBVTT\n\n"
        "00:01.000 --> 00:01.400\n<v face 1><u>Hello</u>\nbig world\n\n"
        "00:01.400 --> 00:01.600\n<v face 1>Hello\nbig world\n\n"
        "00:01.600 --> 00:01.800\n<v face 1>Hello\n<u>big</u> world\n\n"
        "00:01.800 --> 00:02.200\n<v face 1>Hello\nbig <u>world</u>\n\n"
    )


@pytest.mark.parametrize("speaker", ["face 1", "face 2", "face 12", "off-screen", None])
def test_the_schema_takes_each_kind_of_speaker(speaker):
    import jsonschema

    box = None if speaker in (None, "off-screen") else [0.0, 1.5, 64.0, 80.0]
    jsonschema.validate(_schema_segment(speaker=speaker, face_box=box, flags=["off_screen"] if speaker == "off-screen" else []), _SEGMENT)


@pytest.mark.parametrize(
    "changes",
    [{"speaker": "face 0"}, {"speaker": "face"}, {"speaker": "Face 1"}, {"speaker": "face 01"}, {"speaker": "speaker 1"},
     {"face_box": [1.0, 2.0, 3.0]}, {"face_box": [1, 2, 3, 4, 5]}, {"face_box": ["1", 2, 3, 4]}, {"flags": ["offscreen"]}],
)  # fmt: skip
def test_the_schema_refuses_other_speakers_boxes_and_flags(changes):
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_schema_segment(**changes), _SEGMENT)


@pytest.mark.parametrize("key", ["speaker", "face_box"])
def test_the_schema_requires_speaker_and_face_box(key):
    import jsonschema

    segment = _schema_segment()
    del segment[key]
    with pytest.raises(jsonschema.ValidationError, match=key):
        jsonschema.validate(segment, _SEGMENT)


_SEGMENT = {"$ref": "#/$defs/segment", "$defs": SCHEMA["$defs"]}


def _schema_segment(**changes) -> dict:
    segment = {"id": 0, "seek": 0, "start": 0.0, "end": 1.0, "text": " hi", "tokens": [1], "temperature": 0.0, "mode": "avsr",
               "rates": [4, 2], "face_coverage": 1.0, "speaker": "face 1", "face_box": [0.0, 0.0, 10.0, 10.0], "flags": []}  # fmt: skip
    return {**segment, **changes}
