"""The synthetic corpus generator (omniavsr synth-corpus): grammar, espeak-ng speech and timings, the
talking face, determinism, resuming, and that prep-lips finds the face it draws."""

import hashlib
import importlib.metadata
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

from omniavsr_cli.errors import InputError
from omniavsr_cli.synthetic import grammar
from omniavsr_cli.synthetic import speech as espeak
from omniavsr_cli.synthetic.face import REST, mouth_track, viseme

# --------------------------------------------------------------------------------------------- grammar


def test_sentences_follow_the_grid_grammar_and_the_split_never_changes():
    rng = np.random.default_rng(0)
    for _ in range(200):
        words = grammar.sentence(rng).split()
        assert len(words) == 6 and all(word in slot for word, slot in zip(words, grammar.SLOTS))
    tests = [grammar.sentence_in("test", rng) for _ in range(50)]
    assert all(grammar.split_of(text) == "test" for text in tests)
    assert all(grammar.split_of(grammar.sentence_in("train", rng)) == "train" for _ in range(50))
    everything = {grammar.sentence(np.random.default_rng(k)) for k in range(2000)}
    held_out = sum(grammar.split_of(text) == "test" for text in everything) / len(everything)
    assert 0.06 < held_out < 0.14  # about one sentence in ten
    assert grammar.spoken_form("place blue at a two now") == "place blue at eigh two now"
    assert "w" not in grammar.SLOTS[3]


# --------------------------------------------------------------------------------------------- visemes


def test_the_mouth_closes_for_bilabials_opens_for_open_vowels_and_rounds_for_w():
    assert viseme("p")[0] == viseme("m")[0] == 0.0
    assert viseme("ɑː")[0] > 0.8 and viseme("aɪ")[0] > 0.8  # a diphthong starts from its first vowel
    assert viseme("w")[2] == 1.0 and viseme("uː")[2] == 1.0 and viseme("iː")[2] == 0.0
    assert viseme("iː")[1] > viseme("uː")[1]  # spread against rounded
    assert viseme("") == REST and viseme("?") == REST


def test_the_mouth_track_follows_the_phoneme_timings():
    # "ma" at 0.4 s and "pu" at 1.0 s, silence around them.
    phonemes = [(0.4, "m"), (0.5, "ɑː"), (0.8, ""), (1.0, "p"), (1.1, "uː"), (1.4, "")]
    track = mouth_track(phonemes, 50, start=0.2)
    assert track.shape == (50, 3)
    opening = track[:, 0]
    assert opening[:12].max() < 0.1  # closed until 0.6 s (0.4 + the 0.2 s start)
    assert opening[np.argmax(opening)] > 0.7 and 17 <= int(np.argmax(opening)) <= 24  # "ɑː" at 0.7-1.0 s
    assert track[32:38, 2].max() > 0.8  # "uː" rounds the lips at 1.3-1.6 s
    assert abs(opening[45:].mean() - REST[0]) < 0.02  # back to rest
    shifted = mouth_track(phonemes, 50, start=0.6)
    assert int(np.argmax(shifted[:, 0])) - int(np.argmax(opening)) == 10  # 0.4 s later = 10 frames


# --------------------------------------------------------------------------------------------- espeak-ng


@pytest.fixture(scope="module")
def speaker():
    return espeak.Speaker()  # the dev extra installs the espeakng-loader wheel: no apt step


def test_the_speaker_uses_the_pinned_wheel_and_its_own_voice_data(speaker):
    import espeakng_loader

    wheel = importlib.metadata.version("espeakng-loader")
    assert speaker.source.startswith(f"espeakng-loader {wheel} wheel (libespeak-ng 1.")
    assert speaker._data == os.fsencode(Path(espeakng_loader.get_data_path()).parent)


def test_every_accent_and_every_variant_is_a_voice_of_its_own(speaker):
    # espeak-ng ignores an unknown variant, so a variant missing from the data would sound like the accent alone.
    text = "place blue at eff two now"
    said = lambda accent, variant: speaker.say(text, espeak.Voice(accent, variant, 160, 50, 50)).audio.tobytes()  # noqa: E731
    assert len({said(accent, "") for accent in espeak.ACCENTS}) == len(espeak.ACCENTS)
    assert len({said("en-us", variant) for variant in espeak.VARIANTS}) == len(espeak.VARIANTS)


def test_without_the_wheel_the_system_library_is_used_with_its_own_data(monkeypatch):
    import espeakng_loader

    # The wheel's library stands in for a system one: without the wheel's data path it cannot start (its
    # compiled-in path is on the machine that built it), which is why the wheel's data is always passed.
    library = espeakng_loader.get_library_path()
    monkeypatch.delenv("ESPEAK_DATA_PATH", raising=False)  # libespeak-ng's own fallback for a missing path
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    monkeypatch.setattr(espeak.ctypes.util, "find_library", lambda name: library if name == "espeak-ng" else None)
    system = espeak.Speaker()
    assert re.fullmatch(r"system libespeak-ng 1\.\d+\.\d+ \((.+)\)", system.source)[1] == library and system._data is None
    with pytest.raises(espeak.EspeakUnavailable, match=r"failed to start.*omniavsr\[synth\]"):
        system.say("now", espeak.Voice("en-us", "", 160, 50, 50))


def test_without_the_wheel_or_a_system_library_the_error_names_both_fixes(monkeypatch):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    monkeypatch.setattr(espeak.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(espeak.EspeakUnavailable, match=r"not installed: pip install 'omniavsr\[synth\]' \(or: apt-get install espeak-ng\)"):
        espeak.Speaker()


def test_espeak_speech_comes_with_ordered_phoneme_timings_inside_the_audio(speaker):
    voice = espeak.Voice("en-us", "", 160, 50, 50)
    utterance = speaker.say("place blue at eff two now", voice)
    seconds = len(utterance.audio) / espeak.SAMPLE_RATE
    assert 1.0 < seconds < 4.0 and np.abs(utterance.audio).max() > 0.1
    onsets = [onset for onset, _ in utterance.phonemes]
    assert onsets == sorted(onsets) and 0 <= onsets[0] and onsets[-1] <= seconds + 0.05
    names = [name for _, name in utterance.phonemes if name]
    assert names[:2] == ["p", "l"] and "uː" in names and "aʊ" in names  # libespeak-ng 1.52's stress marks dropped
    slower = speaker.say("place blue at eff two now", espeak.Voice("en-us", "", 120, 50, 50))
    assert len(slower.audio) > 1.2 * len(utterance.audio)
    other = speaker.say("place blue at eff two now", espeak.Voice("en-gb-scotland", "f3", 160, 70, 50))
    assert not np.array_equal(other.audio[:8000], utterance.audio[:8000])


def test_an_unknown_voice_is_a_clear_error(speaker):
    with pytest.raises(espeak.EspeakUnavailable, match="no voice"):
        speaker.say("now", espeak.Voice("xx-nowhere", "", 160, 50, 50))


# --------------------------------------------------------------------------------------------- the corpus


# Every corpus makes its babble (6 talkers, 60 s: seconds of speech synthesis); a test that mixes none in needs little.
LITTLE_BABBLE = {"babble_talkers": 1, "babble_seconds": 1.0}


def _digests(directory):
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted((directory / "clips").iterdir())}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, speaker):
    from omniavsr_cli.synthetic.corpus import CorpusOptions, generate

    directory = tmp_path_factory.mktemp("corpus") / "grid"
    result = generate(directory, CorpusOptions(clips=5, seed=3, split="test"), workers=2)
    assert (result.made, result.skipped) == (5, 0)
    return directory


def test_a_corpus_holds_video_audio_transcripts_and_landmarks(corpus):
    from omniavsr_cli.media.decode import load_audio
    from omniavsr_cli.media.probe import probe

    records = [json.loads(line) for line in (corpus / "corpus.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(5))
    for record in records:
        clip = corpus / "clips" / record["id"]
        assert (clip.with_suffix(".txt")).read_text().strip() == record["text"]
        assert grammar.split_of(record["text"]) == "test"
        info = probe(clip.with_suffix(".mp4"))
        assert info.audio is not None and (info.video.width, info.video.height, info.video.fps) == (224, 224, 25)
        assert abs(info.duration - record["seconds"]) < 0.1
        with np.load(f"{clip}.landmarks.npz") as marks:
            assert marks["points"].shape == (record["frames"], 68, 2) and marks["detected"].all()
        audio = load_audio(clip.with_suffix(".mp4"))
        start, end = record["sentences"][0]
        speech = audio[int(start * 16000) : int(end * 16000)]
        assert np.sqrt(np.mean(speech**2)) > 10 * np.sqrt(np.mean(audio[: int(start * 16000) - 800] ** 2) + 1e-12)
    babble = load_audio(corpus / "babble.wav")
    assert abs(len(babble) / 16000 - 60) < 0.1 and np.sqrt(np.mean(babble**2)) > 0.05
    assert len({r["voice"]["accent"] + r["voice"]["variant"] + str(r["voice"]["rate"]) for r in records}) == 5


@pytest.mark.slow
def test_the_same_seed_gives_the_same_bytes_and_a_rerun_only_finishes(corpus, tmp_path):
    from omniavsr_cli.synthetic.corpus import CorpusOptions, generate

    # Interrupted after 3 clips (the records say so): the rerun makes only the missing 2, and the corpus is the
    # bytes of the uninterrupted one, made with two workers where these runs have one (and the full babble, which
    # no clean clip holds).
    partial = tmp_path / "partial"
    generate(partial, CorpusOptions(clips=3, seed=3, split="test", **LITTLE_BABBLE), workers=1)
    finished = generate(partial, CorpusOptions(clips=5, seed=3, split="test", **LITTLE_BABBLE), workers=1)
    assert (finished.made, finished.skipped) == (2, 3)
    assert _digests(partial) == _digests(corpus)
    assert (partial / "corpus.jsonl").read_bytes() == (corpus / "corpus.jsonl").read_bytes()

    other = generate(tmp_path / "other", CorpusOptions(clips=1, seed=4, split="test", **LITTLE_BABBLE))
    assert other.made == 1 and set(_digests(tmp_path / "other").values()).isdisjoint(_digests(corpus).values())
    with pytest.raises(InputError, match="other options"):
        generate(partial, CorpusOptions(clips=5, seed=9, split="test", **LITTLE_BABBLE))


def test_prep_lips_finds_the_drawn_face_and_its_lips_where_they_were_drawn(corpus, tmp_path):
    clip = corpus / "clips" / "s3-000000.mp4"
    result = run_cli("prep-lips", str(clip), "-o", str(tmp_path / "rois"))
    assert result.returncode == 0, result.stderr.decode()
    record = json.loads((tmp_path / "rois" / "prep.jsonl").read_text().splitlines()[0])
    assert record["status"] == "ok" and record["face_coverage"] == 1.0
    with np.load(tmp_path / "rois" / "s3-000000.landmarks.npz") as found, np.load(corpus / "clips" / "s3-000000.landmarks.npz") as drawn:
        error = np.abs(found["points"] - drawn["points"])
        assert np.median(error) < 2.0  # pixels, in a 224x224 frame
        opening = lambda p: p[:, 66, 1] - p[:, 62, 1]  # noqa: E731 (inner lips, lower minus upper)
        assert np.corrcoef(opening(found["points"]), opening(drawn["points"]))[0, 1] > 0.8  # FaceMesh sees the mouth move


def test_prep_lips_with_two_workers_keeps_every_clip(corpus, tmp_path):
    # Five clips, two workers: the fifth is the first one past the initial 2 x workers submissions.
    clips = corpus / "clips"
    result = run_cli(
        "prep-lips", str(clips), "-o", str(tmp_path / "rois"), "--workers", "2", "--manifest", "--detector", f"landmarks:{clips}"
    )
    assert result.returncode == 0, result.stderr.decode()
    rows = (tmp_path / "rois" / "manifest.csv").read_text().splitlines()
    assert sorted(row.split(",")[1] for row in rows) == [f"s3-{k:06d}.mp4" for k in range(5)]


def test_the_cli_makes_a_noisy_corpus_and_reports_bad_options(corpus, tmp_path):
    import shutil

    from omniavsr_cli.media.decode import load_audio

    # The babble of seed 3 is the fixture's: found in OUT, it is used as a rerun would, not synthesised again.
    (tmp_path / "noisy").mkdir()
    shutil.copy(corpus / "babble.wav", tmp_path / "noisy")
    result = run_cli(
        "synth-corpus", str(tmp_path / "noisy"), "--clips", "1", "--seed", "3", "--split", "test", "--snr", "0", "--workers", "1"
    )
    assert result.returncode == 0, result.stderr.decode()
    assert "1 clips made" in result.stderr.decode()
    record = json.loads((tmp_path / "noisy" / "corpus.jsonl").read_text())
    assert record["snr_db"] == 0
    clean = json.loads((corpus / "corpus.jsonl").read_text().splitlines()[0])
    assert record["text"] == clean["text"]  # the same clip, with babble added
    pause = int(record["sentences"][0][0] * 16000) - 800
    rms = lambda path: float(np.sqrt(np.mean(load_audio(path)[:pause] ** 2)))  # noqa: E731
    assert rms(tmp_path / "noisy" / "clips" / "s3-000000.mp4") > 20 * rms(corpus / "clips" / "s3-000000.mp4") + 1e-3
    bad = run_cli("synth-corpus", str(tmp_path / "bad"), "--split", "dev")
    assert bad.returncode == 2 and bad.stderr.decode().count("\n") == 1 and "--split 'dev'" in bad.stderr.decode()


def test_the_demo_models_starting_point_keeps_the_audio_and_knows_every_grid_word(tmp_path):
    import torch

    from omniavsr_cli.model.loading import load_model
    from omniavsr_cli.synthetic.demo_model import init_demo_model

    model = load_model(init_demo_model(tmp_path / "init"))
    assert model.config.whisper.window_seconds == 6 and model.config.audio_rates == (4, 16) and model.config.video_rates == (2, 5)
    conv1 = model.module.audio_encoder.encoder.conv1.weight
    assert abs(conv1.std().item() - (2.0 / (conv1.shape[1] * conv1.shape[2])) ** 0.5) < 0.01  # He, not N(0, 0.02)
    assert abs(model.module.llm.get_input_embeddings().weight.std().item() - 0.02) < 0.005
    ids = model.tokenizer(" ".join(grammar.VOCABULARY), add_special_tokens=False).input_ids
    assert len(set(ids)) == len(grammar.VOCABULARY)  # one token per word, none unknown
    assert model.tokenizer.decode(ids) == " ".join(grammar.VOCABULARY)
    from omniavsr_cli.decoding import DecodingOptions
    from omniavsr_cli.model.omni import Clip

    [text] = model.generate_text([Clip(audio=torch.randn(32000))], "asr", (4, 2), DecodingOptions())
    assert all(word in model.tokenizer.get_vocab() for word in text.split())


# --------------------------------------------------------------------------------------------- two faces


@pytest.fixture(scope="module")
def conversations(tmp_path_factory, speaker):
    from omniavsr_cli.synthetic.corpus import CorpusOptions, generate

    root = tmp_path_factory.mktemp("two-faces")
    generate(root / "talking", CorpusOptions(clips=2, seed=5, split="test", sentences=3, faces=2, distractor="talking", **LITTLE_BABBLE))
    generate(root / "offscreen", CorpusOptions(clips=1, seed=6, split="test", sentences=2, faces=2, offscreen=True, **LITTLE_BABBLE))
    return root


def _records(directory):
    return [json.loads(line) for line in (directory / "corpus.jsonl").read_text().splitlines()]


def _opening(points):
    return points[..., 66, 1] - points[..., 62, 1]  # inner lips, lower minus upper


def _frame_rms(audio, frames):
    return np.sqrt(np.mean(np.pad(audio, (0, max(0, frames * 640 - len(audio))))[: frames * 640].reshape(frames, 640) ** 2, axis=1))


def test_facemesh_finds_both_drawn_faces_where_the_record_and_landmarks_put_them(conversations):
    from omniavsr_cli.lips.landmarks import MediaPipeFaceMesh
    from omniavsr_cli.media.decode import load_video
    from omniavsr_cli.media.probe import probe

    [record, _] = _records(conversations / "talking")
    clip = conversations / "talking" / "clips" / record["id"]
    info = probe(clip.with_suffix(".mp4"))
    assert (info.video.width, info.video.height, info.video.fps) == (448, 224, 25) and info.audio is not None
    video = load_video(clip.with_suffix(".mp4"))
    with np.load(f"{clip}.landmarks.npz") as marks:
        drawn, points, shown = marks["faces"], marks["points"], marks["face_of_points"]
    assert drawn.shape == (record["frames"], 2, 68, 2) and points.shape == (record["frames"], 68, 2)
    assert np.array_equal(points, drawn[np.arange(len(drawn)), shown])
    with MediaPipeFaceMesh() as detector:
        for index in range(0, record["frames"], 25):
            found = sorted(detector.detect(video[index], index), key=lambda face: face.centre[0])
            assert len(found) == 2
            for face in (0, 1):
                assert np.median(np.abs(found[face].points - drawn[index, face])) < 2.0
    for turn in record["speakers"]:
        x0, y0, x1, y1 = turn["box"]
        first, last = int(turn["start"] * 25), int(turn["end"] * 25)
        inside = drawn[first:last, turn["face"]]
        assert x0 <= inside[..., 0].min() + 0.1 and inside[..., 0].max() <= x1 + 0.1 and y0 <= inside[..., 1].min() + 0.1
        assert (x0 >= 224) == (turn["face"] == 1)  # face 1 is the right half


def test_speakers_take_turns_and_are_heard_where_the_record_says(conversations):
    from omniavsr_cli.media.decode import load_audio

    for record in _records(conversations / "talking"):
        turns = record["speakers"]
        assert [[turn["start"], turn["end"]] for turn in turns] == record["sentences"]
        assert [turn["face"] for turn in turns] in ([0, 1, 0], [1, 0, 1])
        assert turns[0]["voice"] == record["voice"] and turns[0]["voice"] != turns[1]["voice"] and turns[0]["voice"] == turns[2]["voice"]
        audio = load_audio(conversations / "talking" / "clips" / f"{record['id']}.mp4")
        rms = lambda a, b, audio=audio: float(np.sqrt(np.mean(audio[int(a * 16000) : int(b * 16000)] ** 2)) + 1e-9)  # noqa: E731
        for turn, following in zip(turns, turns[1:]):
            pause = rms(turn["end"] + 0.05, following["start"] - 0.05)
            assert rms(turn["start"], turn["end"]) > 10 * pause and rms(following["start"], following["end"]) > 10 * pause
    [offscreen] = _records(conversations / "offscreen")
    assert [(turn["face"], turn["box"]) for turn in offscreen["speakers"]] == [("off-screen", None)] * 2


def test_only_the_heard_face_moves_its_lips_with_the_audio(conversations):
    from omniavsr_cli.media.decode import load_audio

    heard, unheard = [], []
    for record in _records(conversations / "talking"):
        clip = conversations / "talking" / "clips" / record["id"]
        rms = _frame_rms(load_audio(clip.with_suffix(".mp4")), record["frames"])
        with np.load(f"{clip}.landmarks.npz") as marks:
            opening = _opening(marks["faces"])
        for turn in record["speakers"]:
            first, last = int(turn["start"] * 25), int(turn["end"] * 25)
            correlation = [np.corrcoef(opening[first:last, face], rms[first:last])[0, 1] for face in (0, 1)]
            silent = 1 - turn["face"]
            assert opening[first:last, silent].std() > 1.0  # the silent face talks too, unheard (pixels)
            assert correlation[turn["face"]] > correlation[silent]
            heard.append(correlation[turn["face"]])
            unheard.append(correlation[silent])
    assert np.mean(heard) > 0.45 and np.mean(heard) > np.mean(unheard) + 0.25
    # Off screen, idle: both faces' lips move a little, more slowly than speech, and neither says the audio.
    [record] = _records(conversations / "offscreen")
    with np.load(conversations / "offscreen" / "clips" / f"{record['id']}.landmarks.npz") as marks:
        opening = _opening(marks["faces"])
    assert all(0.1 < opening[:, face].std() < 2.0 for face in (0, 1))


def test_two_face_options_are_checked_and_a_corpus_keeps_its_face_count(tmp_path):
    from omniavsr_cli.synthetic.corpus import CorpusOptions, _check_options

    for arguments, expected in (
        (("--offscreen",), "--offscreen is about the face that is not speaking: add --faces 2"),
        (("--distractor", "talking"), "--distractor talking is about the face that is not speaking: add --faces 2"),
        (("--faces", "2", "--distractor", "loud"), "--distractor 'loud': choose one of idle, talking"),
    ):
        bad = run_cli("synth-corpus", str(tmp_path / "bad"), *arguments)
        assert bad.returncode == 2 and bad.stderr.decode().count("\n") == 1 and expected in bad.stderr.decode()
    assert not (tmp_path / "bad").exists()
    _check_options(tmp_path, CorpusOptions(clips=1, faces=2, distractor="talking"))
    with pytest.raises(InputError, match="other options"):
        _check_options(tmp_path, CorpusOptions(clips=1))
    _check_options(tmp_path, CorpusOptions(clips=7, faces=2, distractor="talking"))


# --------------------------------------------------------------------------------------------- refusals and failures


def test_absurd_counts_seeds_and_snrs_are_refused_before_anything_is_written(tmp_path):
    from omniavsr_cli.errors import UsageError
    from omniavsr_cli.synthetic.corpus import MAX_CLIPS, CorpusOptions

    for arguments, expected in (
        (("--seed", "-1"), "--seed -1: must be 0 or more"),
        (("--snr", "-inf"), "--snr -inf: give a finite SNR"),
        (("--snr", "inf"), "--snr inf: give a finite SNR"),
        (("--snr", "nan"), "--snr nan: give a finite SNR"),
    ):
        bad = run_cli("synth-corpus", str(tmp_path / "bad"), "--workers", "1", *arguments)
        assert bad.returncode == 2 and bad.stderr.decode().count("\n") == 1 and expected in bad.stderr.decode(), bad.stderr
        assert not (tmp_path / "bad").exists()

    CorpusOptions(clips=MAX_CLIPS)
    with pytest.raises(UsageError, match="clips 100000000000: at most 1,000,000"):  # not through the command: unrefused, it fills memory
        CorpusOptions(clips=100_000_000_000)


def test_a_failed_encode_leaves_no_video_behind(tmp_path):
    from omniavsr_cli.errors import OutputError
    from omniavsr_cli.media.encode import write_talking_video

    video = tmp_path / "clip.mp4"
    with pytest.raises(OutputError, match="could not write the video"):  # AAC refuses NaN samples
        write_talking_video(video, np.zeros((2, 16, 16, 3), np.uint8), np.full(1280, np.nan, np.float32))
    assert list(tmp_path.iterdir()) == []


class _QuickMaker:
    """Stands in for corpus._Maker: a record per clip and no files, so that a test can ask for many clips."""

    stop_at = None  # a Ctrl-C when this clip is reached

    def __init__(self, options, landmarks, noise, clips_dir):
        self.options = options

    def make(self, index):
        if index == self.stop_at:
            raise KeyboardInterrupt
        return {"id": f"s{self.options.seed}-{index:06d}", "index": index}


@pytest.fixture
def quick_clips(monkeypatch):
    from omniavsr_cli.synthetic import corpus

    monkeypatch.setattr(corpus, "_Maker", _QuickMaker)
    monkeypatch.setattr(corpus, "_babble_file", lambda path, options: None)
    monkeypatch.setattr(corpus, "portrait_landmarks", lambda variant: None)
    return corpus


def test_memory_does_not_grow_with_the_number_of_clips(quick_clips, tmp_path, monkeypatch):
    import tracemalloc

    monkeypatch.setattr(_QuickMaker, "stop_at", 2)
    tracemalloc.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            quick_clips.generate(tmp_path, quick_clips.CorpusOptions(clips=quick_clips.MAX_CLIPS), workers=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # a list of a million clip indices alone is over 30 MB
    assert [json.loads(line)["index"] for line in (tmp_path / "corpus.jsonl").read_text().splitlines()] == [0, 1]


def test_a_corpus_is_never_cut_to_fewer_clips(quick_clips, tmp_path):
    out = str(tmp_path / "grid")
    assert run_cli("synth-corpus", out, "--clips", "3", "--workers", "1").returncode == 0
    records = (tmp_path / "grid" / "corpus.jsonl").read_bytes()
    fewer = run_cli("synth-corpus", out, "--clips", "2", "--workers", "1")
    expected = "already holds 3 clips, 1 of them past --clips 2; give at least 3 to finish or grow it, or make a smaller corpus"
    assert fewer.returncode == 2 and fewer.stderr.decode().count("\n") == 1 and expected in fewer.stderr.decode(), fewer.stderr
    assert (tmp_path / "grid" / "corpus.jsonl").read_bytes() == records
    more = run_cli("synth-corpus", out, "--clips", "4", "--workers", "1")
    assert more.returncode == 0 and "1 clips made, 3 already there" in more.stderr.decode()


def test_pool_workers_leave_ctrl_c_to_the_main_process(quick_clips):
    import signal

    previous = signal.getsignal(signal.SIGINT)
    try:
        quick_clips._start_worker(quick_clips.CorpusOptions(clips=1), (), None, None)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # else each worker prints its own traceback
    finally:
        signal.signal(signal.SIGINT, previous)
