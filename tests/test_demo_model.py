"""The shipped demo model (weights/demo) on held-out synthetic clips, through the whole pipeline: probe, VAD,
FaceMesh, mouth crops, batched decoding, writers. A regression anywhere in it shows up here as errors."""

import json
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from omniavsr_cli.scoring import corpus_wer

DEMO = REPO / "weights" / "demo"
HELD_OUT = sorted((REPO / "tests" / "data" / "demo").glob("*.mp4"))
EXAMPLE = REPO / "examples" / "demo" / "grid-example.mp4"


def _reference(clip: Path) -> str:
    return clip.with_suffix(".txt").read_text().strip()


def _transcribe(tmp_path: Path, mode: str, clips: list[Path], *extra: str) -> dict[str, dict]:
    # OMNIAVSR_WEIGHTS elsewhere: `--model demo` must still find the model the checkout ships.
    out = tmp_path / mode
    result = run_cli("transcribe", *map(str, clips), "--model", "demo", "--mode", mode, "-o", str(out), "-f", "json,srt", *extra,
                     env={"OMNIAVSR_WEIGHTS": str(tmp_path / "nothing-installed")})  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    return {clip.stem: json.loads((out / f"{clip.stem}.json").read_text()) for clip in clips}


def test_the_demo_model_is_small_and_complete():
    config = json.loads((DEMO / "config.json").read_text())
    assert sum(path.stat().st_size for path in DEMO.rglob("*") if path.is_file()) < 20 * 2**20
    assert (DEMO / "MODEL_CARD.md").is_file()
    assert config["audio_rates"] == [4, 16] and config["video_rates"] == [2, 5]
    assert len(HELD_OUT) >= 6 and EXAMPLE.is_file()


@pytest.mark.parametrize("mode", ["avsr", "asr"])
def test_held_out_clips_are_transcribed_within_the_wer_bound(tmp_path, mode):
    transcripts = _transcribe(tmp_path, mode, HELD_OUT)
    hypotheses = [transcripts[clip.stem]["text"] for clip in HELD_OUT]
    assert all(segment["mode"] == mode for t in transcripts.values() for segment in t["segments"])
    assert corpus_wer([_reference(clip) for clip in HELD_OUT], hypotheses) <= 0.05, hypotheses


def test_lip_reading_alone_is_far_better_than_chance(tmp_path):
    transcripts = _transcribe(tmp_path, "vsr", HELD_OUT, "--rates", "4,2")
    hypotheses = [transcripts[clip.stem]["text"] for clip in HELD_OUT]
    assert corpus_wer([_reference(clip) for clip in HELD_OUT], hypotheses) <= 0.5, hypotheses


def test_the_example_gets_one_subtitle_per_sentence_at_the_right_time(tmp_path):
    transcript = _transcribe(tmp_path, "avsr", [EXAMPLE])[EXAMPLE.stem]
    assert corpus_wer([_reference(EXAMPLE)], [transcript["text"]]) <= 0.06
    # The three sentences start at 0.16, 3.10 and 6.18 s (the generator's record) and are 1-2 s apart.
    starts = [segment["start"] for segment in transcript["segments"]]
    assert len(starts) == 3 and all(abs(a - b) < 0.5 for a, b in zip(starts, [0.164, 3.101, 6.184])), starts
    srt = (tmp_path / "avsr" / f"{EXAMPLE.stem}.srt").read_text()
    assert srt.startswith("1\n00:00:0") and "\n3\n" in srt
