"""`omniavsr transcribe` end to end on a small random-weight model (same classes, native format) and media
made here with the real ffmpeg: a real face (matplotlib's portrait) with speech-like audio, audio only, a
face without audio, a video without a face, a 96x96 mouth-crop video, a corrupt file."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from faces import face_frames, speech_like, write_media
from helpers import REPO, run_cli, sigint_as_in_a_terminal

from omniavsr_cli.decoding import BatchDecoder, BatchLimits, DecodingOptions, hallucination_flags, repeated_ngram
from omniavsr_cli.model.loading import load_model
from omniavsr_cli.model.random_init import save_random_model, small_config
from omniavsr_cli.transcribe import ChunkDecoded, InputDone, Model, Pipeline, TranscribeOptions
from omniavsr_cli.vad import fixed_windows, plan_chunks, speech_regions


def transcribe(model, files, options):
    """Each file's transcript in the order given, as the Python API makes them; the first failure raised."""
    results = sorted(Model(model.module, model.tokenizer, model.directory).transcribe_many(files, options), key=lambda result: result.index)
    for result in results:
        if not result.ok:
            raise result.error
    return [result.transcript for result in results]


SPEECH = [(0.5, 2.5), (3.0, 5.5)]
FAST = ["--beams", "2"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("transcribe")
    save_random_model(root / "model", small_config())
    frames = face_frames(150, 160)
    audio = speech_like(SPEECH, 6.0)
    media = root / "media"
    media.mkdir()
    write_media(media / "face.mp4", frames, audio)
    write_media(media / "talk.wav", None, audio)
    write_media(media / "silent.mp4", frames, None)
    grey = np.random.default_rng(0).integers(100, 140, (150, 160, 160, 3), dtype=np.uint8)
    write_media(media / "noface.mp4", grey, audio)
    (media / "nested").mkdir()
    write_media(media / "nested" / "face.mp4", frames[:, 32:128, 32:128], audio)  # 96x96: a mouth-crop video
    (media / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100)
    return root


def _json(out: Path, clip_id: str) -> dict:
    return json.loads((out / f"{clip_id}.json").read_text(encoding="utf-8"))


def _log(out: Path) -> dict:
    return {r["id"]: r for r in map(json.loads, (out / "run.jsonl").read_text().splitlines())}


# ------------------------------------------------------------------------------------------ chunk plan


def test_chunks_never_exceed_the_limit_and_are_cut_at_the_longest_pause():
    # Regions in frames: pauses of 5, 30 and 2 frames; a 100-frame limit fits the first three regions only.
    regions = [(0, 20), (25, 50), (80, 95), (97, 150)]
    assert plan_chunks(regions, 100) == [(0, 50), (80, 150)]  # cut at the 30-frame pause, not the last that fits
    assert plan_chunks([(0, 250)], 100) == [(0, 83), (83, 167), (167, 250)]  # one long region: equal pieces
    for chunk in plan_chunks([(i * 37, i * 37 + 30) for i in range(40)], 160):
        assert chunk[1] - chunk[0] <= 160
    assert fixed_windows(1000, 400) == [(0, 333), (333, 667), (667, 1000)]


def test_silero_finds_the_speech_in_generated_audio():
    regions = [(s / 16000, e / 16000) for s, e in speech_regions(speech_like(SPEECH, 6.0), 16.0)]
    assert len(regions) == 2
    for (start, end), (true_start, true_end) in zip(regions, SPEECH):
        assert abs(start - true_start) < 0.35 and abs(end - true_end) < 0.35
    assert speech_regions(np.zeros(16000 * 3, dtype=np.float32), 16.0) == []


def test_running_silero_leaves_torch_on_every_core():
    """silero_vad's import sets torch to one thread for the whole process; the model must not run on one core."""
    import subprocess
    import sys

    script = (
        "import numpy, torch; torch.set_num_threads(3); from omniavsr_cli.vad import speech_regions; "
        "speech_regions(numpy.zeros(16000, dtype=numpy.float32), 16.0); print(torch.get_num_threads())"
    )
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip() == "3"


def test_a_ten_minute_input_is_chunked_within_the_limit_and_covered(tmp_path):
    """The chunks transcribe hands the model (segments are these chunks, decoded): the plan alone, as decoding
    sixty chunks would only time the model."""
    from omniavsr_cli.inputs import InputFile
    from omniavsr_cli.transcribe import InputState, chunk_input

    rng = np.random.default_rng(1)
    pattern, t = [], 0.3
    while t < 598:
        length = float(rng.uniform(1.0, 9.0))
        pattern.append((t, min(t + length, 599.5)))
        t += length + float(rng.choice([0.3, 0.6, 1.5]))
    long = write_media(tmp_path / "long.wav", None, speech_like(pattern, 600.0))
    state = InputState(0, InputFile(long, "long"), 0.0)
    chunks = [(c.start_frame / 25, c.end_frame / 25) for c in chunk_input(state.item, TranscribeOptions(max_chunk_s=12.0), state)]
    assert len(chunks) >= 50 and state.duration == pytest.approx(600.0, abs=0.05)
    assert all(0 < end - start <= 12.0 for start, end in chunks)
    assert all(a[1] <= b[0] for a, b in zip(chunks, chunks[1:]))
    assert chunks[0][0] <= pattern[0][0] + 0.3 and chunks[-1][1] >= pattern[-1][1] - 0.3
    for start, end in pattern:  # every stretch of speech lies inside the chunks
        middle = (start + end) / 2
        assert any(a <= middle <= b for a, b in chunks), (start, end)


# ------------------------------------------------------------------------------------------- pipeline


def test_every_kind_of_input_gets_the_right_status_mode_and_outputs(work, tmp_path):
    out = tmp_path / "out"
    result = run_cli("transcribe", str(work / "media"), "--model", str(work / "model"), "-o", str(out), *FAST)
    assert result.returncode == 3, result.stderr.decode()  # some failed
    log = _log(out)
    assert {k: v["status"] for k, v in log.items()} == {
        "broken": "failed",
        "face": "ok",
        "nested/face": "ok",
        "noface": "ok",
        "silent": "ok",
        "talk": "ok",
    }
    assert log["broken"]["error_code"] == "E_CORRUPT" and log["broken"]["outputs"] == []
    for clip_id in ("face", "nested/face", "noface", "silent", "talk"):
        assert sorted(p.name for p in (out / clip_id).parent.glob(Path(clip_id).name + ".*")) == [
            f"{Path(clip_id).name}.{ext}" for ext in sorted(["txt", "srt", "vtt", "tsv", "json", "jsonl"])
        ]
    assert not list(out.rglob("*.part")) and not (out / "broken.json").exists()

    face, talk, silent, noface, crops = (_json(out, i) for i in ("face", "talk", "silent", "noface", "nested/face"))
    assert {s["mode"] for s in face["segments"]} == {"avsr"} and face["detector"] == "mediapipe" and face["face_coverage"] > 0.9
    assert {s["mode"] for s in talk["segments"]} == {"asr"} and talk["segments"][0]["face_coverage"] is None
    assert {s["mode"] for s in silent["segments"]} == {"vsr"} and silent["timing"] == "fixed_window"
    assert {s["mode"] for s in noface["segments"]} == {"asr"} and noface["face_coverage"] == 0.0
    assert {s["mode"] for s in crops["segments"]} == {"avsr"} and crops["detector"] == "pre-cropped"
    # The speech in the VAD'd inputs is at 0.5-5.5 s, heard with up to 0.4 s of context on each side; the
    # video-only input is one fixed window over 6 s. A segment spans its timed words, which stay inside its chunk.
    for document in (face, silent):
        for segment in document["segments"]:
            words = segment["words"]
            assert words and "".join(w["word"] for w in words) == segment["text"]
            assert (segment["start"], segment["end"]) == (words[0]["start"], words[-1]["end"])
            assert all(a["end"] <= b["start"] for a, b in zip(words, words[1:]))
    assert 0.0 <= face["segments"][0]["start"] and face["segments"][-1]["end"] <= 6.0
    assert len(silent["segments"]) == 1 and 0.0 <= silent["segments"][0]["start"] < silent["segments"][0]["end"] <= 6.0
    checksums = json.loads((work / "model" / "checksums.json").read_text())
    assert face["model"]["sha256"] == checksums["model.safetensors"] and face["tool"]["name"] == "omniavsr"
    assert face["decoding"]["num_beams"] == 2 and face["rates"] == [4, 2] and face["duration"] == pytest.approx(6.0, abs=0.1)
    segment = face["segments"][0]
    assert set(segment) >= {"id", "seek", "start", "end", "text", "tokens", "temperature", "mode", "rates", "face_coverage", "flags"}
    assert segment["text"] == " ".join(w for w in segment["text"].split())
    import jsonschema

    schema = json.loads((REPO / "omniavsr_cli" / "transcript.schema.json").read_text())
    for document in (face, talk, silent, noface, crops):
        jsonschema.validate(document, schema)
    srt = (out / "face.srt").read_text(encoding="utf-8")
    cue_words = [w for cue in srt.split("\n\n") if cue for line in cue.splitlines()[2:] for w in line.split()]
    assert srt.startswith("1\n00:00:0") and cue_words == " ".join(s["text"] for s in face["segments"]).split()  # cut at word boundaries


def test_all_inputs_failing_and_a_missing_model_have_their_own_exit_codes(work, tmp_path):
    result = run_cli(
        "transcribe", str(work / "media" / "broken.mp4"), str(tmp_path / "nope.mp4"), "--model", str(work / "model"), "-o", str(tmp_path)
    )
    assert result.returncode == 4
    assert {r["error_code"] for r in _log(tmp_path).values()} == {"E_CORRUPT", "E_NOT_FOUND"}

    env = {"OMNIAVSR_WEIGHTS": str(tmp_path / "empty")}
    result = run_cli("transcribe", str(work / "media" / "talk.wav"), "-o", str(tmp_path / "o"), env=env)
    assert result.returncode == 5 and result.stderr.decode().count("\n") == 1
    assert "omniavsr weights download omni-avsr-st" in result.stderr.decode() and not (tmp_path / "o").exists()


def test_fail_fast_stops_at_the_first_failed_input_and_a_rerun_does_the_rest(work, tmp_path):
    media = work / "media"
    inputs = [str(media / name) for name in ("broken.mp4", "face.mp4", "talk.wav", "silent.mp4")]
    out = tmp_path / "out"
    result = run_cli("transcribe", *inputs, "--model", str(work / "model"), "-o", str(out), "-f", "json", "--fail-fast")
    stderr = result.stderr.decode()
    assert result.returncode in (3, 4), stderr
    assert "stopped at the first failure (--fail-fast)" in stderr and "rerun with --skip-existing" in stderr
    log = _log(out)
    assert log["broken"]["status"] == "failed" and len(log) < 4, "the inputs after the failure were not transcribed"
    assert result.returncode == (4 if len(log) == 1 else 3)
    result = run_cli("transcribe", *inputs, "--model", str(work / "model"), "-o", str(out), "-f", "json", "--skip-existing")
    assert result.returncode == 3
    assert {clip_id: r["status"] for clip_id, r in _log(out).items()} == {"broken": "failed", "face": "ok", "talk": "ok", "silent": "ok"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--rates", "4,3"], "choose one of 4,2 4,5 16,2 16,5"),
        (["--rates", "four"], "A,V"),
        (["-o", "-", "-f", "srt,json"], "one format"),
        (["--mode", "lips"], "--mode lips"),
        (["--face-select", "loudest"], "--face-select 'loudest': choose one of"),
        (["-f", "docx"], "docx"),
        (["-o", "README.md/out"], "cannot write here"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(work, tmp_path, arguments, message):
    result = run_cli("transcribe", str(work / "media" / "talk.wav"), "--model", str(work / "model"), "-o", str(tmp_path), *arguments)
    assert result.returncode == 2 and message in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


def test_an_input_without_speech_gets_every_file_and_a_writer_bug_fails_only_its_input(work, tmp_path, monkeypatch):
    from omniavsr_cli import writers

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    write_media(inputs / "quiet.wav", None, np.zeros(32000, np.float32))  # nothing to say: no segments
    for name in ("a", "b"):
        shutil.copy(work / "media" / "talk.wav", inputs / f"{name}.wav")
    srt = writers.WRITERS["srt"]

    def broken_for_b(transcript, options):
        if transcript.id == "b":
            raise RuntimeError("a writer bug")
        return srt(transcript, options)

    monkeypatch.setitem(writers.WRITERS, "srt", broken_for_b)
    out = tmp_path / "out"
    result = run_cli("transcribe", str(inputs), "--model", str(work / "model"), "-o", str(out), "--workers", "1", *FAST)
    assert result.returncode == 3 and "Traceback" not in result.stderr.decode(), result.stderr.decode()
    log = _log(out)
    assert log["quiet"]["status"] == "ok" and "no_speech" in log["quiet"]["flags"]
    assert (out / "quiet.srt").read_text() == "" and (out / "quiet.vtt").read_text() == "WEBVTT\n\n"
    assert log["a"]["status"] == "ok" and (out / "a.srt").read_text()
    assert log["b"]["status"] == "failed" and log["b"]["error_code"] == "E_INTERNAL" and "a writer bug" in log["b"]["error"]


def test_a_failing_name_with_a_newline_or_a_terminal_escape_stays_on_one_stderr_line(work, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("bad\nname.mp4", "clear\x1b[2J.mp4"):
        (inputs / name).write_bytes(b"not media at all")
    result = run_cli("transcribe", str(inputs), "--model", str(work / "model"), "-o", str(tmp_path / "out"), *FAST)
    assert result.returncode == 4
    lines = result.stderr.decode().splitlines()
    assert lines and all(line.startswith(("omniavsr: ", "transcribe: ")) for line in lines), lines
    assert "\x1b" not in result.stderr.decode() and "bad\\nname" in result.stderr.decode() and "clear\\x1b[2J" in result.stderr.decode()


def test_media_on_stdin_gives_only_results_on_stdout(work, tmp_path):
    data = (work / "media" / "face.mp4").read_bytes()
    result = run_cli("transcribe", "-", "--model", str(work / "model"), "-o", "-", "-f", "jsonl", *FAST, input=data)
    assert result.returncode == 0, result.stderr.decode()
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert lines and all(line["input"] == "stdin" and line["mode"] == "avsr" for line in lines)
    assert "transcribe:" in result.stderr.decode()

    srt = run_cli("transcribe", "-", "--model", str(work / "model"), "-o", "-", "-f", "srt", *FAST, input=data)
    written = run_cli(
        "transcribe", str(work / "media" / "face.mp4"), "--model", str(work / "model"), "-o", str(tmp_path), "-f", "srt", *FAST
    )
    assert srt.returncode == written.returncode == 0
    assert srt.stdout.decode() == (tmp_path / "face.srt").read_text(encoding="utf-8")

    garbage = run_cli("transcribe", "-", "--model", str(work / "model"), "-o", "-", "-f", "jsonl", input=b"not media at all")
    stderr = garbage.stderr.decode()
    assert garbage.returncode == 4 and "stdin: standard input: not a media file" in stderr and "stdin.media" not in stderr, stderr


def test_a_killed_run_resumes_without_losing_or_redoing_anything(work, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    audio = speech_like(SPEECH, 6.0)
    for n in range(6):
        write_media(inputs / f"talk{n}.wav", None, audio * (0.5 + 0.1 * n))
    out = tmp_path / "out"
    command = [
        str(Path(sys.executable).parent / "omniavsr"),
        "transcribe",
        str(inputs),
        "--model",
        str(work / "model"),
        "-o",
        str(out),
        "--batch-size",
        "1",
        "-f",
        "json,srt",
        *FAST,
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=sigint_as_in_a_terminal)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ((out / "run.jsonl").exists() and (out / "run.jsonl").read_text().count("\n") >= 2):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    finished = {k for k, r in _log(out).items() if r["status"] == "ok"}
    if process.returncode == 130:  # it stopped part-way: it says how to finish
        assert "--skip-existing" in stderr.decode() and 2 <= len(finished) < 6
    before = {p: p.stat().st_mtime_ns for p in out.glob("*.json")}

    resumed = run_cli(*command[1:], "--skip-existing")
    assert resumed.returncode == 0, resumed.stderr.decode()
    log = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    assert {r["id"] for r in log[len(finished) :] if r["status"] == "skipped"} == finished
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in before.items())  # finished outputs were not rewritten
    assert sorted(p.name for p in out.glob("*.json")) == [f"talk{n}.json" for n in range(6)] and not list(out.glob("*.part"))

    fresh = tmp_path / "fresh"
    assert run_cli(*command[1:6], str(fresh), *command[7:]).returncode == 0
    for n in range(6):
        assert _json(out, f"talk{n}")["segments"] == _json(fresh, f"talk{n}")["segments"]


def test_batched_transcripts_equal_one_chunk_at_a_time(work):
    model = load_model(work / "model", attn_implementation="eager")
    files = [work / "media" / name for name in ("face.mp4", "talk.wav", "silent.mp4")]
    results = {}
    for batch_size in (None, 1):
        options = TranscribeOptions(decoding=DecodingOptions(num_beams=3), batch_size=batch_size, max_chunk_s=2.0)
        transcripts = transcribe(model, files, options)
        results[batch_size] = [[(s.mode, s.start, s.end, s.tokens, s.flags) for s in t.segments] for t in transcripts]
    assert sum(map(len, results[None])) >= 7 and {s[0] for t in results[None] for s in t} == {"asr", "vsr", "avsr"}
    assert results[None] == results[1]


# --------------------------------------------------------------------------------------- decoding guards


def test_repeats_and_runaway_transcripts_are_flagged():
    assert repeated_ngram([5, 5, 5, 5]) and not repeated_ngram([5, 5, 5, 6])
    assert repeated_ngram([1, 2, 3, 1, 2, 3, 1, 2, 3]) and not repeated_ngram([1, 2, 3, 1, 2, 3, 4])
    assert hallucination_flags([1, 2, 3], 2.0, 32) == []
    assert hallucination_flags(list(range(32)), 2.0, 32) == ["token_limit", "too_many_tokens"]
    assert hallucination_flags([7] * 10, 10.0, 80) == ["repetition"]


class _SmallMemory:
    """The real model behind a memory limit: more than two clips in one call raise torch's out-of-memory error."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, clips, *args):
        if len(clips) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.model.generate(clips, *args)


def test_out_of_memory_halves_the_batch_and_gives_the_same_tokens(work):
    model = load_model(work / "model", attn_implementation="eager").module
    from omniavsr_cli.model.omni import Clip

    clips = [Clip(audio=speech_like(SPEECH, 2.0 + n / 4)) for n in range(5)]
    options = DecodingOptions(num_beams=2)
    roomy = BatchDecoder(model, (4, 2), options, BatchLimits(size=8), guards=False).decode(clips, "asr")
    tight = BatchDecoder(_SmallMemory(model), (4, 2), options, BatchLimits(size=8), guards=False)
    assert [r.ids for r in tight.decode(clips, "asr")] == [r.ids for r in roomy]
    assert tight.settled_size == 2
    with pytest.raises(Exception, match="out of memory decoding 4 clip"):
        BatchDecoder(_SmallMemory(model), (4, 2), options, BatchLimits(size=4, adaptive=False), guards=False).decode(clips, "asr")


def test_out_of_memory_in_the_word_pass_is_an_error_by_kind(work, monkeypatch):
    from omniavsr_cli import alignment
    from omniavsr_cli.errors import OutOfMemory
    from omniavsr_cli.model.omni import Clip

    model = load_model(work / "model", attn_implementation="eager").module
    decoder = BatchDecoder(model, (4, 2), DecodingOptions(num_beams=1), BatchLimits(size=8), guards=False, word_heads=[(1, 0)])
    assert decoder.decode([Clip(audio=speech_like(SPEECH, 2.0))], "asr")[0].attention is not None

    def full(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(alignment, "attention_to_prefix", full)
    with pytest.raises(OutOfMemory, match="timing the words of 1 clip"):
        decoder.decode([Clip(audio=speech_like(SPEECH, 2.0))], "asr")


@pytest.mark.slow
def test_bench_reports_every_stage_and_batched_equals_the_official_loop():
    result = run_cli("bench", "--model", "small", "--seconds", "9", "--max-chunk-s", "4", "--beams", "3", "--against-loop", "--json")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert set(report["stage_seconds"]) >= {"probe", "decode_audio", "vad", "video", "landmarks", "encoders", "llm"}
    assert report["media_seconds"] == pytest.approx(9.0, abs=0.1) and report["chunks"] >= 3 and report["tokens"] > 0
    assert report["peak_rss_mb"] > 0 and report["real_time_factor"] > 0
    assert report["loop"]["chunks"] == report["chunks"] and report["loop"]["equal_outputs"] is True


def test_bench_takes_a_folder_as_transcribe_does_and_checks_paths_before_the_model(work, tmp_path, monkeypatch):
    from omniavsr_cli.model import loading

    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("the model loads only for inputs that exist"))
    missing = run_cli("bench", str(tmp_path / "nope.mp4"), "--model", str(work / "model"))
    assert missing.returncode == 2 and "nope.mp4: no such file" in missing.stderr.decode()
    folder = tmp_path / "media"
    folder.mkdir()
    shutil.copy(work / "media" / "talk.wav", folder / "talk.wav")
    monkeypatch.undo()
    result = run_cli("bench", str(folder), "--model", str(work / "model"), "--mode", "asr", "--beams", "2", "--json")
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["media_seconds"] > 0


# ------------------------------------------------------------------------------------------ hostile inputs


def _not_utf8(folder: Path, source: Path) -> Path:
    """A copy of ``source`` whose name is not valid UTF-8 ("caf\\xe9"), or a skip where the file system refuses one."""
    target = folder / (b"caf\xe9" + source.suffix.encode()).decode(errors="surrogateescape")
    try:
        target.write_bytes(source.read_bytes())
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes only UTF-8 names")
    return target


def test_a_file_name_that_is_not_utf8_is_transcribed_and_recorded(work, tmp_path):
    inputs, out = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir()
    odd = _not_utf8(inputs, work / "media" / "talk.wav")
    (inputs / "zz.wav").write_bytes(odd.read_bytes())  # after it: the batch goes on
    result = run_cli(
        "transcribe", str(inputs), "--model", str(work / "model"), "-o", str(out), "-f", "json,srt", "--mode", "asr", "--beams", "1"
    )
    assert result.returncode == 0, result.stderr.decode()
    log = _log(out)
    assert {k: v["status"] for k, v in log.items()} == {odd.stem: "ok", "zz": "ok"}
    assert os.fsencode(log[odd.stem]["input"]).endswith(b"caf\xe9.wav")
    assert os.fsencode(json.loads((out / f"{odd.stem}.json").read_bytes())["id"]) == b"caf\xe9"
    assert (out / f"{odd.stem}.srt").is_file()  # named from the original bytes


def test_a_video_too_short_for_one_token_fails_alone_or_falls_back_to_the_audio(work, tmp_path):
    from omniavsr_cli.inputs import InputFile
    from omniavsr_cli.model.omni import Clip

    model = load_model(work / "model", attn_implementation="eager")
    crops = face_frames(4, 160)[:, 32:128, 32:128]  # 96x96: no face detection needed
    one, four, spoken = tmp_path / "one.mp4", tmp_path / "four.mp4", tmp_path / "spoken.mp4"
    write_media(one, crops[:1], None)
    write_media(four, crops, None)
    write_media(spoken, crops[:1], speech_like(SPEECH, 6.0))  # one frame of video, six seconds of sound
    items = [InputFile(path, path.stem) for path in (one, spoken, work / "media" / "talk.wav")]
    events = Pipeline(model, TranscribeOptions(decoding=DecodingOptions(num_beams=1))).run(items)
    results = {e.item.clip_id: e for e in events if isinstance(e, InputDone)}
    assert not results["one"].ok and results["one"].error.code == "E_TOO_SHORT"
    assert results["spoken"].ok and results["talk"].ok and "video_ended_early" in results["spoken"].transcript.info["flags"]
    # Video rate 5 pools five frames into a token: four make none.
    events = Pipeline(model, TranscribeOptions(rates=(4, 5), decoding=DecodingOptions(num_beams=1))).run([InputFile(four, "four")])
    [result] = [e for e in events if isinstance(e, InputDone)]
    assert result.error.code == "E_TOO_SHORT" and "5 (200 ms)" in str(result.error)
    # The model itself says so too, and audio of any length has a token at every audio rate (it is padded).
    with pytest.raises(Exception, match="too short for video rate 2") as raised:
        model.module.generate([Clip(video=torch.zeros(1, 1, 88, 88))], "vsr", (4, 2), DecodingOptions(num_beams=1))
    assert raised.value.code == "E_TOO_SHORT"
    for rate in model.config.audio_rates:
        assert (
            len(model.module.generate([Clip(audio=torch.zeros(1))], "asr", (rate, 2), DecodingOptions(num_beams=1, max_new_tokens=2))) == 1
        )


def test_segments_are_handed_out_as_decoded_numbered_as_in_the_transcript(work):
    from omniavsr_cli.inputs import InputFile

    model = load_model(work / "model", attn_implementation="eager")
    options = TranscribeOptions(decoding=DecodingOptions(num_beams=1), max_chunk_s=2.0, guards=False)
    events = list(Pipeline(model, options).run([InputFile(work / "media" / "talk.wav", "talk")]))
    chunks = [e for e in events if isinstance(e, ChunkDecoded)]
    assert sorted(e.chunk for e in chunks) == list(range(len(chunks)))
    streamed = sorted((s.id, s.start) for e in chunks for s in e.segments)
    [transcript] = [e.transcript for e in events if isinstance(e, InputDone)]
    assert isinstance(events[-1], InputDone) and len(streamed) >= 3
    assert streamed == [(s.id, s.start) for s in transcript.segments] == [(n, s.start) for n, s in enumerate(transcript.segments)]


def test_a_video_without_audio_reports_fixed_windows(work, tmp_path):
    model = load_model(work / "model", attn_implementation="eager")
    silent = write_media(tmp_path / "silent.mp4", face_frames(50, 160)[:, 32:128, 32:128], None)
    [transcript] = transcribe(model, [silent], TranscribeOptions(decoding=DecodingOptions(num_beams=1)))
    assert transcript.info["timing"] == "fixed_window" and transcript.info["decoding"]["vad"] is None


@pytest.mark.parametrize("mode", ["auto", "avsr"])
def test_a_video_that_ends_before_the_audio_is_transcribed_with_the_audio_alone_after_it(work, tmp_path, mode, caplog):
    model = load_model(work / "model", attn_implementation="eager")
    # 2.4 s of video and 6 s of sound with speech on both sides of the video's end, as in concatenated recordings.
    early = write_media(tmp_path / "early.mp4", face_frames(60, 160)[:, 32:128, 32:128], speech_like(SPEECH, 6.0))
    options = TranscribeOptions(mode=mode, max_chunk_s=2.0, decoding=DecodingOptions(num_beams=1), guards=False)
    [transcript] = transcribe(model, [early], options)
    assert "video_ended_early" in transcript.info["flags"] and transcript.info["duration"] == pytest.approx(6.0, abs=0.1)
    assert {s.mode for s in transcript.segments if s.end <= 2.4} == {"avsr"}
    assert {s.mode for s in transcript.segments if s.start >= 2.4} == {"asr"} and transcript.segments[-1].end > 5.0
    assert "the video ends at 2.4 s, the audio at 6.0 s" in caplog.text


def test_a_model_with_a_narrow_domain_says_so_once(work, tmp_path):
    import shutil
    from types import SimpleNamespace

    from omniavsr_cli.model.loading import model_domain

    assert "GRID" in model_domain(SimpleNamespace(directory=REPO / "weights" / "demo"))
    assert model_domain(SimpleNamespace(directory=work / "model")) is None
    narrow = shutil.copytree(work / "model", tmp_path / "narrow")
    (narrow / "domain.txt").write_text("it knows only four words\n", encoding="utf-8")
    result = run_cli(
        "transcribe",
        str(work / "media" / "talk.wav"),
        "--model",
        str(narrow),
        "-o",
        str(tmp_path / "out"),
        "-f",
        "json",
        "--mode",
        "asr",
        "--beams",
        "1",
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr.decode().count("model narrow: it knows only four words\n") == 1
    assert _json(tmp_path / "out", "talk")["model"]["domain"] == "it knows only four words"


@pytest.mark.slow
def test_ctrl_c_while_workers_are_in_native_code_always_exits_130(work, tmp_path):
    """Worker threads decode video, track faces and run the VAD in native code. Left running at exit, they were
    unwound by force and aborted the process (SIGABRT, exit 134) in most runs; every run must end in 130."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    frames, audio = np.concatenate([face_frames(150, 160)] * 6), speech_like([(0.5 + 3 * k, 2.5 + 3 * k) for k in range(12)], 36.0)
    write_media(inputs / "long0.mp4", frames, audio)
    shutil.copy(inputs / "long0.mp4", inputs / "long1.mp4")  # two inputs: both workers busy
    # Three runs at once, each interrupted at its own moment after its model is loaded (as three sequential runs
    # would be, in a third of the wall time).
    runs = []
    for attempt, delay in enumerate((0.5, 2.0, 3.5)):
        command = [
            str(Path(sys.executable).parent / "omniavsr"),
            "transcribe",
            str(inputs),
            "--model",
            str(work / "model"),
            "-o",
            str(tmp_path / f"out{attempt}"),
            "--workers",
            "2",
            *FAST,
        ]
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=sigint_as_in_a_terminal)
        runs.append((process, delay))
    for process, delay in runs:
        assert process.stderr.readline().startswith(b"transcribe: model")  # loaded: the workers start now
        threading.Timer(delay, process.send_signal, (signal.SIGINT,)).start()
    for process, delay in runs:
        stderr = process.communicate(timeout=120)[1].decode()
        assert process.returncode == 130, (delay, process.returncode, stderr)
        assert "interrupted" in stderr and "terminate called" not in stderr


def test_subtitle_flags_shape_the_cues_and_need_word_timestamps(tmp_path):
    example = REPO / "examples" / "demo" / "grid-example.mp4"
    out = tmp_path / "narrow"
    result = run_cli("transcribe", str(example), "--model", "demo", "-o", str(out), "-f", "srt,json", "--max-line-width", "12", "-q")
    assert result.returncode == 0, result.stderr.decode()
    from omniavsr_cli.transcribe import Segment
    from omniavsr_cli.writers import SubtitleOptions, Word, check_cues, subtitle_cues

    written = _json(out, "grid-example")["segments"]  # back to Segments: the JSON holds every field but seek
    segments = [Segment(**{k: v for k, v in s.items() if k != "seek"} | {"words": [Word(**w) for w in s["words"]]}) for s in written]
    narrow = SubtitleOptions(max_line_width=12)
    cues = subtitle_cues(segments, narrow)
    assert check_cues(cues, narrow) == [] and len(cues) > len(segments)  # the sentences had to be cut
    srt = (out / "grid-example.srt").read_text(encoding="utf-8")
    lines = [line for cue in srt.strip().split("\n\n") for line in cue.splitlines()[2:]]
    assert lines and all(len(line) <= 12 or " " not in line for line in lines)
    highlighted = run_cli("transcribe", str(example), "--model", "demo", "-o", "-", "-f", "vtt", "--highlight-words", "-q")
    assert highlighted.returncode == 0 and highlighted.stdout.decode().count("<u>") == sum(len(s.words) for s in segments)
    refused = run_cli("transcribe", str(example), "--model", "demo", "-o", str(tmp_path / "x"), "--no-word-timestamps", "--highlight-words")
    assert refused.returncode == 2 and refused.stderr.decode().count("\n") == 1 and "--word-timestamps" in refused.stderr.decode()
