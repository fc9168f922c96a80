"""Word times: what synth-corpus records for every word (the ground truth), the bundled held-out clips that carry
them, the readers of word-time files (LRS3 .txt, corpus.jsonl, JSON) and the timing-error measures."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from omniavsr_cli.errors import InputError
from omniavsr_cli.scoring.word_times import WordTime, parse_lrs3, read_word_times, summarise, timing_errors
from omniavsr_cli.synthetic import grammar
from omniavsr_cli.synthetic import speech as espeak

WORDS = Path(__file__).parent / "data" / "words"


@pytest.fixture(scope="module")
def speaker():
    return espeak.Speaker()


def _utterances(speaker, count: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        text, voice = grammar.spoken_form(grammar.sentence(rng)), espeak.Voice.draw(rng)
        yield text, speaker.say(text, voice)


# --------------------------------------------------------------------------------------------- espeak-ng's word events


def test_word_events_give_the_said_words_in_order_without_overlap_inside_the_audio(speaker):
    said = list(_utterances(speaker, 30, seed=11))
    said.append(("place blue at eigh two now", speaker.say("place blue at eigh two now", espeak.Voice("en-us", "f5", 160, 50, 50))))
    for text, utterance in said:
        assert [word for word, _, _ in utterance.words] == text.split()
        seconds = len(utterance.audio) / espeak.SAMPLE_RATE
        for (_, start, end), (_, following, _) in zip(utterance.words, [*utterance.words[1:], ("", seconds, seconds)]):
            assert 0 <= start < end <= following <= seconds


def _silences(audio: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) in seconds of every stretch of 8 ms or more that is 35 dB below the loudest 5 ms."""
    window, hop = 80, 16  # 5 ms windows every 1 ms at 16 kHz
    frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float64), window)[::hop]
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    quiet = np.concatenate([[False], level < level.max() - 35, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(int)))
    centre = lambda frame: (frame * hop + window / 2) / espeak.SAMPLE_RATE  # noqa: E731
    return [(centre(a), centre(b - 1)) for a, b in zip(edges[::2], edges[1::2]) if (b - a) * hop >= 128]


def test_words_start_where_their_sound_comes_back_and_end_where_it_stops(speaker):
    # Where a silence (a pause, a stop's closure) borders a word, its edge is the word's edge. libespeak-ng's word
    # event comes before the closure of a word-initial stop, 10-55 ms before the sound: taken as the start it
    # would fail here, as would the next phoneme (a stop's burst) taken as the end.
    onsets, offsets = [], []
    for _, utterance in _utterances(speaker, 24, seed=5):
        audio = np.concatenate([utterance.audio, np.zeros(1600, np.float32)])  # a clip's silence follows the speech
        silences = _silences(audio)
        for _, start, end in utterance.words:
            # a final stop's release after its closure belongs to the word before: that silence is not this word's
            previous_sound = max([onset for onset, name in utterance.phonemes if name and onset < start], default=-1.0)
            comes_back = [b - start for _, b in silences if abs(b - start) <= 0.06 and b > previous_sound + 0.005]
            stops = [a - end for a, _ in silences if abs(a - end) <= 0.06]
            onsets += [min(comes_back, key=abs)] if comes_back else []
            offsets += [min(stops, key=abs)] if stops else []
    for errors in (np.abs(onsets), np.abs(offsets)):
        assert len(errors) > 40  # about half of the word edges are silences
        assert np.median(errors) < 0.006 and np.mean(errors <= 0.02) > 0.9


def test_breathy_voices_say_a_text_the_same_way_every_time(speaker):
    # Their noise comes from a generator libespeak-ng seeds from the clock in seconds; the speaker seeds it.
    voice = espeak.Voice("en-029", "f5", 192, 30, 43)
    first = speaker.say("bin blue by h one please", voice)
    time.sleep(1.1)
    again = speaker.say("bin blue by h one please", voice)
    assert np.array_equal(first.audio, again.audio) and first.words == again.words


# --------------------------------------------------------------------------------------------- synth-corpus records


def test_a_corpus_records_every_words_times_on_the_clips_timeline(tmp_path, speaker):
    from omniavsr_cli.synthetic.corpus import CorpusOptions, generate

    generate(tmp_path, CorpusOptions(clips=1, seed=7, split="test", sentences=2, babble_seconds=2))
    record = json.loads((tmp_path / "corpus.jsonl").read_text())
    transcript = (tmp_path / "clips" / f"{record['id']}.txt").read_text().split()
    assert [word["word"] for word in record["words"]] == transcript and "eigh" not in transcript
    voice = espeak.Voice(**record["voice"])
    for (begin, finish), words in zip(record["sentences"], (record["words"][:6], record["words"][6:]), strict=True):
        text = " ".join(word["word"] for word in words)
        said = speaker.say(grammar.spoken_form(text), voice).words
        assert [(word["start"], word["end"]) for word in words] == [(round(begin + a, 3), round(begin + b, 3)) for _, a, b in said]
        assert begin <= words[0]["start"] and words[-1]["end"] <= finish
    assert record["words"][6]["start"] - record["words"][5]["end"] > 0.7  # the pause between the sentences
    assert read_word_times(tmp_path / "corpus.jsonl") == {record["id"]: [WordTime(**word) for word in record["words"]]}


def test_the_bundled_held_out_clips_carry_the_words_of_their_transcripts():
    from omniavsr_cli.media.probe import probe

    times = read_word_times(WORDS / "words.json")
    assert sorted(times) == sorted(path.stem for path in WORDS.glob("*.mp4")) == sorted(path.stem for path in WORDS.glob("*.txt"))
    assert len(times) == 12 and sum(path.stat().st_size for path in WORDS.iterdir()) < 2_000_000
    for clip, words in times.items():
        text = (WORDS / f"{clip}.txt").read_text()
        assert [word.word for word in words] == text.split() and grammar.split_of(text.strip()) == "test"
        seconds = probe(WORDS / f"{clip}.mp4").duration
        assert all(a.end <= b.start for a, b in zip(words, words[1:])) and 0 < words[0].start and words[-1].end < seconds


def test_the_bundled_word_times_are_what_the_readme_command_makes(tmp_path):
    from omniavsr_cli.synthetic.corpus import CorpusOptions, generate

    generate(tmp_path, CorpusOptions(clips=12, seed=7, split="test", babble_seconds=2), workers=2)
    assert read_word_times(tmp_path / "corpus.jsonl") == read_word_times(WORDS / "words.json")


# --------------------------------------------------------------------------------------------- reading word times

LRS3_SAMPLE = """Text:  THE CAT SAT DOWN
Conf:  3
Ref:   abcDEF12345

FRAME X Y W H
000000 0.40 0.30 0.20 0.30
000001 0.40 0.30 0.20 0.30

WORD START END ASDSCORE
THE 0.10 0.22 5.1
CAT 0.22 0.61 6.0
SAT 0.70 0.98 4.2
DOWN 0.98 1.40 3.9
"""


def test_an_lrs3_file_and_a_directory_of_them_parse_with_lrs3_ids(tmp_path):
    speaker = tmp_path / "pretrain" / "0af00UcTOSc"
    speaker.mkdir(parents=True)
    (speaker / "50001.txt").write_text(LRS3_SAMPLE)
    (speaker / "50002.txt").write_text("Text:  HELLO\nConf:  2\n\nWORD START END ASDSCORE\nHELLO 0.00 0.35 7.5\n")
    expected = [WordTime("THE", 0.10, 0.22), WordTime("CAT", 0.22, 0.61), WordTime("SAT", 0.70, 0.98), WordTime("DOWN", 0.98, 1.40)]
    assert read_word_times(speaker / "50001.txt") == {"0af00UcTOSc/50001": expected}
    assert read_word_times(tmp_path / "pretrain") == {"0af00UcTOSc/50001": expected, "0af00UcTOSc/50002": [WordTime("HELLO", 0.0, 0.35)]}
    # the table ends at a blank line; the ASDSCORE column may be missing; CRLF line ends are fine
    assert parse_lrs3("WORD START END ASDSCORE\r\nA 0.1 0.2\r\n\r\nsomething else\r\n", "x.txt") == [WordTime("A", 0.1, 0.2)]


def test_a_json_of_word_times_parses():
    path = WORDS / "words.json"
    times = read_word_times(path)
    assert times["s7-000000"][0] == WordTime(**json.loads(path.read_text())["s7-000000"][0])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("clip.txt", "Text:  HELLO\nConf:  2\n", "has no 'WORD START END ASDSCORE' line"),
        ("clip.txt", "WORD START END ASDSCORE\nHELLO 0.1\n", r"clip\.txt:2: expected 'WORD START END ASDSCORE'"),
        ("clip.txt", "WORD START END ASDSCORE\nHELLO 0.5 0.1 3.0\n", r"clip\.txt:2: needs 0 <= start <= end"),
        ("clip.txt", "WORD START END ASDSCORE\nHELLO soon 0.1 3.0\n", r"clip\.txt:2: start and end must be numbers"),
        ("times.json", "{not json", r"times\.json: not valid JSON"),
        ("times.json", "[1, 2]", r"times\.json: expected a JSON object"),
        ("times.json", '{"a": [{"word": "x", "start": 0.3}]}', r"times\.json: id 'a': word 1 must be an object with word, start and end"),
        ("times.json", '{"a": [{"word": "x", "start": 0.3, "end": NaN}]}', r"times\.json: id 'a': word 1: needs 0 <= start <= end"),
        (
            "corpus.jsonl",
            '{"id": "s1-000000", "text": "bin"}\n',
            r"corpus\.jsonl:1: clip s1-000000 has no word times .* make the corpus again",
        ),
        ("corpus.jsonl", '{"id": "a", "words": []}\n{"id": "a", "words": []}\n', r"corpus\.jsonl:2: clip a appears twice"),
        ("times.csv", "a,b\n", r"times\.csv: not a word-times file"),
        ("times.json", "{}", r"times\.json: holds no word times"),
        ("clip.txt", b"WORD START END ASDSCORE\n\xff 0.1 0.2\n", r"clip\.txt: not UTF-8"),
    ],
)
def test_bad_word_time_files_raise_one_line_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError, match=message) as caught:
        read_word_times(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_path_or_a_directory_without_txt_files_is_named(tmp_path):
    with pytest.raises(InputError, match="no such file or directory") as caught:
        read_word_times(tmp_path / "nowhere.json")
    assert caught.value.code == "E_NOT_FOUND"
    with pytest.raises(InputError, match=f"{tmp_path}: holds no .txt files"):
        read_word_times(tmp_path)


# --------------------------------------------------------------------------------------------- measuring


def _words(text: str, step: float = 0.5) -> list[WordTime]:
    return [WordTime(word, k * step, k * step + 0.4) for k, word in enumerate(text.split())]


def test_timing_errors_score_only_the_words_the_alignment_matches():
    reference = _words("bin blue at f two now")
    # "BIN" matches ignoring case; "blue" is deleted, "g" substitutes "f", "extra" is inserted
    hypothesis = [
        WordTime("BIN", 0.05, 0.38),
        WordTime("at", 1.0, 1.5),
        WordTime("g", 1.5, 1.9),
        WordTime("two", 2.2, 2.4),
        WordTime("extra", 2.4, 2.5),
        WordTime("now", 2.5, 2.9),
    ]
    assert timing_errors(hypothesis, reference) == [(0.05, 0.02), (0.0, 0.1), (0.2, 0.0), (0.0, 0.0)]
    assert timing_errors([], reference) == [] and timing_errors(hypothesis, []) == []
    # a word said twice pairs in order, not with the first of its kind
    assert timing_errors(_words("now now", step=1.0), _words("now now", step=1.0)) == [(0.0, 0.0), (0.0, 0.0)]


def test_summarise_gives_medians_spreads_and_fractions_within_80_and_200_ms():
    errors = [(0.0, 0.08), (0.02, 0.1), (0.04, 0.3), (0.5, 0.2)]
    summary = summarise(errors)
    assert summary["count"] == 4
    assert summary["start"] == pytest.approx({"median": 0.03, "iqr": 0.14, "within_80ms": 0.75, "within_200ms": 0.75})
    assert summary["end"] == pytest.approx({"median": 0.15, "iqr": 0.13, "within_80ms": 0.25, "within_200ms": 0.75})
    assert summary["all"]["median"] == pytest.approx(0.09) and summary["all"]["within_80ms"] == pytest.approx(0.5)
    assert summary["all"]["within_200ms"] == pytest.approx(0.75)
    assert summarise([]) == {
        "count": 0,
        **{part: {"median": None, "iqr": None, "within_80ms": None, "within_200ms": None} for part in ("all", "start", "end")},
    }
