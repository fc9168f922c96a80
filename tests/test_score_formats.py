"""Every transcript format omniavsr score reads, its detection, and its error messages."""

import json

import pytest
from helpers import run_cli

from omniavsr_cli.errors import InputError, UsageError
from omniavsr_cli.scoring import score
from omniavsr_cli.scoring.formats import consistent_formats, parse_transcript, read_transcript


def texts(transcript):
    return [u.text for u in transcript.utterances]


def ids(transcript):
    return [u.id for u in transcript.utterances]


def test_plain_text_keeps_blank_lines_and_one_letter_lines(write):
    t = read_transcript(write("hyp.txt", "a\n\nI\nhello world\n"))
    assert t.format == "text"
    assert texts(t) == ["a", "", "I", "hello world"]
    assert not t.has_ids


def test_plain_text_without_final_newline_and_with_crlf(write):
    assert texts(read_transcript(write("a.txt", "one\r\ntwo"))) == ["one", "two"]
    assert texts(read_transcript(write("b.txt", "\n"))) == [""]
    assert texts(read_transcript(write("c.txt", ""))) == []


def test_utf8_bom_is_ignored(write):
    assert texts(read_transcript(write("bom.txt", "\ufeffhello\n"))) == ["hello"]


def test_kaldi_is_detected_and_keeps_empty_utterances(write):
    t = read_transcript(write("text", "spk1_utt1 hello world\nspk1_utt2\n1089-134686-0000 the end\n"))
    assert t.format == "kaldi"
    assert ids(t) == ["spk1_utt1", "spk1_utt2", "1089-134686-0000"]
    assert texts(t) == ["hello world", "", "the end"]


def test_sentences_are_not_mistaken_for_kaldi(write):
    assert read_transcript(write("s.txt", "the cat\nthe dog\n")).format == "text"
    assert read_transcript(write("n.txt", "2 people came\n3 more left\n")).format == "text"


def test_trn(write):
    t = read_transcript(write("hyp.trn", "hello world (spk1-utt1)\n(spk1-utt2)\n"))
    assert t.format == "trn"
    assert ids(t) == ["spk1-utt1", "spk1-utt2"]
    assert texts(t) == ["hello world", ""]


def test_trn_detected_without_extension(write):
    assert read_transcript(write("hyp", "a b (u1)\nc (u2)\n")).format == "trn"


def test_unparseable_trn_line_names_file_and_line(write):
    path = write("bad.trn", "hello (u1)\nno id here\n")
    with pytest.raises(InputError, match=r"bad\.trn:2: expected a trn line") as info:
        read_transcript(path)
    assert info.value.code == "E_PARSE"


def test_whisper_style_json_is_one_utterance_from_its_segments(write):
    document = {"text": " ignored", "segments": [{"id": 0, "text": " Hello"}, {"id": 1, "text": " world."}], "language": "en"}
    t = read_transcript(write("talk.json", json.dumps(document)))
    assert t.format == "json" and texts(t) == ["Hello world."] and ids(t) == [None]


def test_json_list_of_records_joins_segments_sharing_an_id(write):
    records = [{"utt_id": "a", "text": "one"}, {"utt_id": "b", "text": "two"}, {"utt_id": "a", "text": "three"}]
    t = read_transcript(write("hyp.json", json.dumps(records)))
    assert ids(t) == ["a", "b"] and texts(t) == ["one three", "two"]


def test_json_mapping_of_ids_to_texts(write):
    t = read_transcript(write("hyp.json", json.dumps({"u1": "a b", "u2": ""})))
    assert ids(t) == ["u1", "u2"] and texts(t) == ["a b", ""]


def test_jsonl_with_and_without_ids(write):
    with_ids = read_transcript(write("h.jsonl", '{"utt_id": "x", "text": "a"}\n{"utt_id": "x", "text": "b"}\n'))
    assert ids(with_ids) == ["x"] and texts(with_ids) == ["a b"]
    without = read_transcript(write("h2.jsonl", '{"text": "a"}\n{"text": ""}\n'))
    assert ids(without) == [None, None] and texts(without) == ["a", ""]


def test_jsonl_detected_by_content_and_bad_line_reported(write):
    assert read_transcript(write("hyp.out", '{"text": "a"}\n{"text": "b"}\n')).format == "jsonl"
    with pytest.raises(InputError, match=r"h\.jsonl:2: expected one JSON object per line"):
        read_transcript(write("h.jsonl", '{"text": "a"}\n{"text": \n'))


def test_jsonl_mixing_records_with_and_without_ids_is_an_error(write):
    with pytest.raises(InputError, match="some records have an 'utt_id'"):
        read_transcript(write("h.jsonl", '{"utt_id": "a", "text": "x"}\n{"text": "y"}\n'))


def test_invalid_json_names_the_line(write):
    with pytest.raises(InputError, match=r"h\.json:2: not valid JSON"):
        read_transcript(write("h.json", '{"text":\n}'))


SRT = """1
00:00:00,000 --> 00:00:02,500
<i>Hello</i> there

2
00:00:02,500 --> 00:00:04,000
general
kenobi

"""


def test_srt_cues_are_utterances_text_only(write):
    t = read_transcript(write("talk.srt", SRT))
    assert t.format == "srt" and texts(t) == ["Hello there", "general kenobi"]
    assert read_transcript(write("talk_srt.txt", SRT)).format == "srt"


def test_malformed_srt_names_the_line(write):
    with pytest.raises(InputError, match=r"bad\.srt:2: expected a subtitle timing line"):
        read_transcript(write("bad.srt", "1\nno timing\ntext\n"))


VTT = """WEBVTT
Kind: captions

NOTE a comment

intro
00:00.000 --> 00:02.000
<v Roger>Hi all

00:02.000 --> 00:03.000
bye
"""


def test_vtt_skips_header_notes_and_cue_ids(write):
    t = read_transcript(write("talk.vtt", VTT))
    assert t.format == "vtt" and texts(t) == ["Hi all", "bye"]
    assert parse_transcript(VTT, "auto", "-").format == "vtt"


def test_vtt_without_header_is_an_error(write):
    with pytest.raises(InputError, match="expected the 'WEBVTT' header"):
        read_transcript(write("x.vtt", "00:00.000 --> 00:01.000\nhi\n"))


def test_non_utf8_reports_line_and_byte(write):
    path = write("latin1.txt", "first line\ncaf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(InputError) as info:
        read_transcript(path)
    message = str(info.value)
    assert "latin1.txt:2: not valid UTF-8" in message and "byte 0xe9" in message and "byte 4" in message
    assert info.value.code == "E_ENCODING"


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file") as info:
        read_transcript(tmp_path / "absent.txt")
    assert info.value.code == "E_NOT_FOUND"
    with pytest.raises(InputError, match="is a directory"):
        read_transcript(tmp_path)


def test_duplicate_kaldi_ids_are_an_error(write):
    with pytest.raises(InputError, match=r"text:3: utterance id 'u1' repeats the one on line 1 \(2 repeated ids in all\)") as e:
        read_transcript(write("text", "u1 a\nu2 b\nu1 c\nu2 d\n"), "kaldi")
    assert e.value.code == "E_DUPLICATE_ID"


@pytest.mark.parametrize("blank, line", [("", 3), ("\n", 4)])
def test_a_repeated_kaldi_id_is_reported_not_scored_as_plain_text(write, blank, line):
    # The reference alone used to be detected as plain text, its ids scored as deleted words (WER 28.6 %).
    hyp = write("hyp.txt", "spk1_utt1 the cat sat\nspk1_utt2 on the mat\nspk1_utt3 and slept\n")
    ref = write("ref.txt", f"spk1_utt1 the cat sat\nspk1_utt2 on the mat\n{blank}spk1_utt2 and slept\n")
    with pytest.raises(InputError) as info:
        score(hyp, ref)
    assert info.value.code == "E_DUPLICATE_ID"
    assert str(info.value).startswith(f"{ref}:{line}: utterance id 'spk1_utt2' repeats the one on line 2;")
    assert "pass hypothesis_format text" in str(info.value)  # score()'s parameter; the command line's --format
    result = run_cli("score", str(hyp), str(ref))
    assert result.returncode == 2 and b"repeats the one on line 2" in result.stderr and b"pass --format text" in result.stderr


def test_a_kaldi_file_is_read_as_kaldi_when_the_other_side_is(write):
    # A blank line makes the reference plain text on its own; its first words are the hypothesis's ids.
    hyp = write("hyp.txt", "u1_a the cat sat\nu2_a on the mat\n")
    ref = write("ref.txt", "u1_a the cat sat\n\nu2_a on the mat\n")
    assert read_transcript(ref).format == "text"
    report = score(hyp, ref)
    assert report.reference.format == "kaldi" and report.pairing == "id" and report.systems[0].wer == 0
    forced = read_transcript(ref, "text")
    assert consistent_formats([forced, read_transcript(hyp)], [False, True])[0] is forced


@pytest.mark.parametrize(
    "encoding, named, iconv",
    [("utf-16", "UTF-16 LE", "UTF-16"), ("utf-16-be", "UTF-16 BE", "UTF-16"), ("utf-32", "UTF-32 LE", "UTF-32")],
)
def test_utf16_and_utf32_files_name_their_encoding_and_the_iconv_that_fixes_them(write, encoding, named, iconv):
    content = "hello world\n".encode(encoding)
    if encoding == "utf-16-be":
        content = b"\xfe\xff" + content
    with pytest.raises(InputError) as info:
        read_transcript(write("hyp.txt", content))
    message = str(info.value)
    assert f"encoded as {named} (it starts with a byte order mark)" in message
    assert f"iconv -f {iconv} -t UTF-8" in message and "latin1" not in message
    assert info.value.code == "E_ENCODING"


def test_utf16_without_a_byte_order_mark_is_named(write):
    with pytest.raises(InputError, match="looks like UTF-16LE without a byte order mark.*iconv -f UTF-16LE -t UTF-8"):
        read_transcript(write("hyp.txt", "hello world\n".encode("utf-16-le")))


def test_a_binary_file_is_not_a_transcript(write):
    with pytest.raises(InputError, match=r"bin.txt: contains NUL bytes \(first at file offset 8\): a binary file, not a") as e:
        read_transcript(write("bin.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01"))
    assert e.value.code == "E_ENCODING" and "latin1" not in str(e.value)


def test_forced_format_overrides_detection(write):
    path = write("ref.txt", "u1 hello\nu2 world\n")
    assert read_transcript(path).format == "kaldi"
    assert texts(read_transcript(path, "text")) == ["u1 hello", "u2 world"]


def test_unknown_format_is_an_error(write):
    with pytest.raises(UsageError, match="unknown transcript format 'xml'"):
        read_transcript(write("a.txt", "x\n"), "xml")


def test_json_nested_deeper_than_the_parser_goes_is_a_parse_error(write):
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(InputError, match="nested too deeply") as raised:
        read_transcript(write("deep.json", deep + "\n"), "json")
    assert raised.value.code == "E_PARSE"
    with pytest.raises(InputError, match="deep.jsonl:2: ") as raised:
        read_transcript(write("deep.jsonl", '{"text": "a"}\n' + deep + "\n"), "jsonl")
    assert raised.value.code == "E_PARSE"
    assert read_transcript(write("sniffed.txt", deep + "\n")).format == "text"  # detection does not fail on it either
