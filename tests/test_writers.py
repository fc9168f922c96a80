"""The writers lay files out exactly as openai/whisper does.

The golden files in tests/data/writers were written by whisper 20250625's own writer classes
(whisper/utils.py) from segments.json; the JSON and jsonl layouts are ours and checked by their keys.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from omniavsr_cli.writers import FORMATS, format_timestamp, parse_formats, write_outputs

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
