"""`omniavsr transcribe` end to end on a small random-weight model (same classes, native format) and media
made here with the real ffmpeg: a real face (matplotlib's portrait) with speech-like audio, audio only, a
face without audio, a video without a face, a 96x96 mouth-crop video, a corrupt file."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, run_cli
from faces import face_frames, speech_like, write_media
from omniavsr_cli.decoding import BatchDecoder, BatchLimits, hallucination_flags, repeated_ngram
from omniavsr_cli.model.loading import load_model
from omniavsr_cli.model.omni import DecodingOptions
from omniavsr_cli.model.random_init import save_random_model, small_config
from omniavsr_cli.transcribe import TranscribeOptions, transcribe
from omniavsr_cli.vad import fixed_windows, plan_chunks, regions_to_frames, speech_regions

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
    assert regions_to_frames([(100, 700), (640, 1280)]) == [(0, 2), (1, 2)]


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

    script = ("import numpy, torch; torch.set_num_threads(3); from omniavsr_cli.vad import speech_regions; "
              "speech_regions(numpy.zeros(16000, dtype=numpy.float32), 16.0); print(torch.get_num_threads())")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip() == "3"


def test_a_ten_minute_input_is_chunked_within_the_limit_and_covered(work, tmp_path):
    rng = np.random.default_rng(1)
    pattern, t = [], 0.3
    while t < 598:
        length = float(rng.uniform(1.0, 9.0))
        pattern.append((t, min(t + length, 599.5)))
        t += length + float(rng.choice([0.3, 0.6, 1.5]))
    write_media(tmp_path / "long.wav", None, speech_like(pattern, 600.0))
    result = run_cli("transcribe", str(tmp_path / "long.wav"), "--model", str(work / "model"), "-o", str(tmp_path / "out"),
                     "-f", "json", "--beams", "1", "--max-chunk-s", "12", "--no-guards")  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    segments = _json(tmp_path / "out", "long")["segments"]
    assert len(segments) >= 50
    assert all(0 < s["end"] - s["start"] <= 12.0 for s in segments)
    assert all(a["end"] <= b["start"] for a, b in zip(segments, segments[1:]))
    assert segments[0]["start"] <= pattern[0][0] + 0.3 and segments[-1]["end"] >= pattern[-1][1] - 0.3
    for start, end in pattern:  # every stretch of speech lies inside the segments
        middle = (start + end) / 2
        assert any(s["start"] <= middle <= s["end"] for s in segments), (start, end)


# ------------------------------------------------------------------------------------------- pipeline


def test_every_kind_of_input_gets_the_right_status_mode_and_outputs(work, tmp_path):
    out = tmp_path / "out"
    result = run_cli("transcribe", str(work / "media"), "--model", str(work / "model"), "-o", str(out), *FAST)
    assert result.returncode == 3, result.stderr.decode()  # some failed
    log = _log(out)
    assert {k: v["status"] for k, v in log.items()} == {
        "broken": "failed", "face": "ok", "nested/face": "ok", "noface": "ok", "silent": "ok", "talk": "ok"
    }  # fmt: skip
    assert log["broken"]["error_code"] == "E_CORRUPT" and log["broken"]["outputs"] == []
    for clip_id in ("face", "nested/face", "noface", "silent", "talk"):
        assert sorted(p.name for p in (out / clip_id).parent.glob(Path(clip_id).name + ".*")) == [
            f"{Path(clip_id).name}.{ext}" for ext in sorted(["txt", "srt", "vtt", "tsv", "json", "jsonl"])
        ]  # fmt: skip
    assert not list(out.rglob("*.part")) and not (out / "broken.json").exists()

    face, talk, silent, noface, crops = (_json(out, i) for i in ("face", "talk", "silent", "noface", "nested/face"))
    assert {s["mode"] for s in face["segments"]} == {"avsr"} and face["detector"] == "mediapipe" and face["face_coverage"] > 0.9
    assert {s["mode"] for s in talk["segments"]} == {"asr"} and talk["segments"][0]["face_coverage"] is None
    assert {s["mode"] for s in silent["segments"]} == {"vsr"} and silent["timing"] == "vad_chunk"
    assert {s["mode"] for s in noface["segments"]} == {"asr"} and noface["face_coverage"] == 0.0
    assert {s["mode"] for s in crops["segments"]} == {"avsr"} and crops["detector"] == "pre-cropped"
    # The speech in the VAD'd inputs is at 0.5-5.5 s; the video-only input is one fixed window over 6 s.
    assert 0.3 < face["segments"][0]["start"] < 1.3 and 5.0 < face["segments"][-1]["end"] <= 6.0
    assert [(s["start"], s["end"]) for s in silent["segments"]] == [(0.0, 6.0)]
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
    assert srt.startswith("1\n00:00:0") and segment["text"].strip() in srt


def test_all_inputs_failing_and_a_missing_model_have_their_own_exit_codes(work, tmp_path):
    result = run_cli("transcribe", str(work / "media" / "broken.mp4"), str(tmp_path / "nope.mp4"), "--model", str(work / "model"), "-o", str(tmp_path))
    assert result.returncode == 4
    assert {r["error_code"] for r in _log(tmp_path).values()} == {"E_CORRUPT", "E_NOT_FOUND"}

    env = {"OMNIAVSR_WEIGHTS": str(tmp_path / "empty")}
    result = run_cli("transcribe", str(work / "media" / "talk.wav"), "-o", str(tmp_path / "o"), env=env)
    assert result.returncode == 5 and result.stderr.decode().count("\n") == 1
    assert "omniavsr weights download omni-avsr-st" in result.stderr.decode() and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--rates", "4,3"], "choose one of 4,2 4,5 16,2 16,5"),
        (["--rates", "four"], "A,V"),
        (["-o", "-", "-f", "srt,json"], "one format"),
        (["--mode", "lips"], "--mode lips"),
        (["-f", "docx"], "docx"),
        (["-o", "README.md/out"], "cannot write here"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(work, tmp_path, arguments, message):
    result = run_cli("transcribe", str(work / "media" / "talk.wav"), "--model", str(work / "model"), "-o", str(tmp_path), *arguments)
    assert result.returncode == 2 and message in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


def test_media_on_stdin_gives_only_results_on_stdout(work, tmp_path):
    data = (work / "media" / "face.mp4").read_bytes()
    result = run_cli("transcribe", "-", "--model", str(work / "model"), "-o", "-", "-f", "jsonl", *FAST, input=data)
    assert result.returncode == 0, result.stderr.decode()
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert lines and all(line["input"] == "stdin" and line["mode"] == "avsr" for line in lines)
    assert "transcribe:" in result.stderr.decode()

    srt = run_cli("transcribe", "-", "--model", str(work / "model"), "-o", "-", "-f", "srt", *FAST, input=data)
    written = run_cli("transcribe", str(work / "media" / "face.mp4"), "--model", str(work / "model"), "-o", str(tmp_path), "-f", "srt", *FAST)
    assert srt.returncode == written.returncode == 0
    assert srt.stdout.decode() == (tmp_path / "face.srt").read_text(encoding="utf-8")


def test_a_killed_run_resumes_without_losing_or_redoing_anything(work, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    audio = speech_like(SPEECH, 6.0)
    for n in range(6):
        write_media(inputs / f"talk{n}.wav", None, audio * (0.5 + 0.1 * n))
    out = tmp_path / "out"
    command = [str(Path(sys.executable).parent / "omniavsr"), "transcribe", str(inputs), "--model", str(work / "model"), "-o", str(out),
               "--batch-size", "1", "-f", "json,srt", *FAST]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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

    def generate(self, clips, *args):
        if len(clips) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.model.generate(clips, *args)


def test_out_of_memory_halves_the_batch_and_gives_the_same_tokens(work):
    model = load_model(work / "model", attn_implementation="eager")
    from omniavsr_cli.model.omni import Clip

    clips = [Clip(audio=speech_like(SPEECH, 2.0 + n / 4)) for n in range(5)]
    options = DecodingOptions(num_beams=2)
    roomy = BatchDecoder(model, (4, 2), options, BatchLimits(size=8), guards=False).decode(clips, "asr")
    tight = BatchDecoder(_SmallMemory(model), (4, 2), options, BatchLimits(size=8), guards=False)
    assert [r.ids for r in tight.decode(clips, "asr")] == [r.ids for r in roomy]
    assert tight.settled_size == 2
    with pytest.raises(Exception, match="out of memory decoding 4 clip"):
        BatchDecoder(_SmallMemory(model), (4, 2), options, BatchLimits(size=4, adaptive=False), guards=False).decode(clips, "asr")


def test_bench_reports_every_stage_and_batched_equals_the_official_loop():
    result = run_cli("bench", "--model", "small", "--seconds", "9", "--max-chunk-s", "4", "--beams", "3", "--against-loop", "--json")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert set(report["stage_seconds"]) >= {"probe", "decode_audio", "vad", "video", "landmarks", "encoders", "llm"}
    assert report["media_seconds"] == pytest.approx(9.0, abs=0.1) and report["chunks"] >= 3 and report["tokens"] > 0
    assert report["peak_rss_mb"] > 0 and report["real_time_factor"] > 0
    assert report["loop"]["chunks"] == report["chunks"] and report["loop"]["equal_outputs"] is True
