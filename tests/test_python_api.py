"""The Python API (docs/python.md): its examples run as written, segments are lazy, results come per input."""

import contextlib
import io
import re

import numpy as np
import pytest
from helpers import REPO

from omniavsr_cli import decoding, load_model
from omniavsr_cli.errors import MediaError, UsageError
from omniavsr_cli.transcribe import TranscribeOptions
from omniavsr_cli.vad import VadOptions

EXAMPLE = REPO / "examples" / "demo" / "grid-example.mp4"


@pytest.fixture(scope="module")
def demo():
    return load_model("demo")


def test_the_examples_in_the_guide_run_as_written(monkeypatch):
    monkeypatch.chdir(REPO)
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "python.md").read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for block in blocks:
            exec(compile(block, "docs/python.md", "exec"), namespace)  # the guide's own code, not user input
    lines = printed.getvalue().splitlines()
    assert lines[0] == "8.2 s"
    assert any(line.endswith("set white by y three again") for line in lines)
    assert any("absent.mp4 failed: E_NOT_FOUND" in line for line in lines) and "E_NOT_FOUND" in lines
    assert any(line.startswith("rates 3,3: this model was trained") for line in lines)


def test_the_first_segment_arrives_before_the_last_chunk_is_decoded(demo, monkeypatch):
    decoded = []
    original = decoding.BatchDecoder.decode
    monkeypatch.setattr(decoding.BatchDecoder, "decode", lambda self, clips, task: decoded.extend(clips) or original(self, clips, task))
    segments, info = demo.transcribe(EXAMPLE, batch_size=2)  # three sentences: two batches
    assert info == {"duration": pytest.approx(8.2, abs=0.1)} and not decoded  # nothing decoded before the first next()
    first = next(segments)
    assert (first.id, first.text) == (0, "set white by y three again") and 1 <= len(decoded) < 3  # the last chunk still to come
    rest = list(segments)
    assert [s.id for s in rest] == [1, 2] and len(decoded) == 3
    assert info["flags"] == [] and info["face_coverage"] == 1.0  # completed once the last segment is out


def test_many_inputs_give_one_result_each_and_a_failure_is_a_result(demo, tmp_path):
    paths = [EXAMPLE, tmp_path / "absent.mp4", REPO / "tests" / "data" / "demo" / "s4-000000.mp4"]
    results = sorted(demo.transcribe_many(paths, batch_size="auto", mode="asr"), key=lambda r: r.index)
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, MediaError) and results[1].error.code == "E_NOT_FOUND"
    assert results[0].transcript.text.startswith("set white by y three again")
    assert {s.mode for r in (results[0], results[2]) for s in r.transcript.segments} == {"asr"}


def test_errors_come_by_kind_and_name_python_arguments(demo):
    with pytest.raises(UsageError, match=r"^rates 3,3: ") as raised:
        demo.transcribe(EXAMPLE, rates=(3, 3))  # checked at the call, before any decoding
    assert isinstance(raised.value, ValueError) and "--" not in str(raised.value)
    with pytest.raises(UsageError, match="^mode shout: choose one of"):
        demo.transcribe(EXAMPLE, mode="shout")
    with pytest.raises(UsageError, match="^face_select 'loudest': choose one of auto, speaker, largest"):
        demo.transcribe(EXAMPLE, face_select="loudest")  # when the options are made, not when a clip reaches the tracker
    with pytest.raises(UsageError, match="^paths is one file"):
        demo.transcribe_many(str(EXAMPLE))  # not one input per character
    with pytest.raises(UsageError, match=r"^paths\[1\] is a ndarray"):
        demo.transcribe_many([EXAMPLE, np.zeros(16000, np.float32)])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: decoding.DecodingOptions(num_beams=0), "^num_beams 0: give a whole number, at least 1"),
        (lambda: decoding.DecodingOptions(num_beams=1.5), "^num_beams 1.5: give a whole number"),
        (lambda: decoding.DecodingOptions(sample=True, temperature=float("nan")), "^temperature nan: give a finite number above 0"),
        (lambda: decoding.DecodingOptions(top_p=2), "^top_p 2: give a probability above 0 and at most 1"),
        (lambda: decoding.DecodingOptions(max_new_tokens=0), "^max_new_tokens 0: give a whole number, at least 1"),
        (lambda: decoding.DecodingOptions(tokens_per_second=float("inf")), "^tokens_per_second inf: give a finite number"),
        (lambda: decoding.DecodingOptions(seed=10**21), "^seed 1000000000000000000000: give a whole number from 0"),
        (lambda: VadOptions(threshold=float("nan")), "^threshold nan: give a speech probability between 0 and 1"),
        (lambda: VadOptions(threshold=2), "^threshold 2: give a speech probability"),
        (lambda: VadOptions(speech_pad_ms=-1), "^speech_pad_ms -1: give a finite number of milliseconds, 0 or more"),
        (lambda: TranscribeOptions(max_chunk_s=float("nan")), "^max_chunk_s nan: give a finite number of seconds, at least 1"),
        (lambda: TranscribeOptions(min_face_coverage=2), "^min_face_coverage 2: give a fraction from 0 to 1"),
        (lambda: TranscribeOptions(batch_size=0), r"^batch_size 0: give a whole number, at least 1 \(or None: auto\)"),
        (lambda: TranscribeOptions(batch_frames=-1), "^batch_frames -1: give a whole number"),
        (lambda: TranscribeOptions(decoding=None), "^decoding: give a DecodingOptions, not NoneType"),
        (lambda: TranscribeOptions(vad_options={"threshold": 0.5}), "^vad_options: give a VadOptions, not dict"),
    ],
)
def test_option_values_that_cannot_work_are_refused_when_the_options_are_made(make, message):
    """Not as a raw error from transformers, or an empty transcript, after the media work is done."""
    with pytest.raises(UsageError, match=message):
        make()
    assert decoding.DecodingOptions(num_beams=np.int64(3), top_p=np.float32(0.5)).num_beams == 3  # numpy's numbers are numbers


def test_the_model_object_owns_what_the_module_does_not():
    import torch

    model = load_model("demo", device="cpu", dtype=torch.float32)
    assert isinstance(model.module, torch.nn.Module) and model.device.type == "cpu" and model.dtype == torch.float32
    assert model.directory.name == "demo" and model.tokenizer is not None and model.config.variant


def test_arrays_give_what_the_file_gives_and_96x96_frames_are_taken_as_crops(demo):
    from omniavsr_cli.media.decode import load_audio, load_video

    audio, frames = load_audio(EXAMPLE), load_video(EXAMPLE)
    from_file = [(s.start, s.end, s.mode, s.text) for s in demo.transcribe(EXAMPLE)[0]]
    assert [(s.start, s.end, s.mode, s.text) for s in demo.transcribe(audio, video=frames)[0]] == from_file
    assert [s.mode for s in demo.transcribe(audio)[0]] == ["asr"] * 3
    segments, info = demo.transcribe(None, video=frames[:, 60:156, 64:160], mode="vsr")  # 96x96: no face detection
    assert list(segments) and info["detector"] == "pre-cropped" and info["duration"] == pytest.approx(8.16, abs=0.05)
    for bad in ({"media": audio.reshape(2, -1)}, {"media": None, "video": frames[..., 0]}, {"media": None}):
        with pytest.raises(UsageError):
            demo.transcribe(**bad)
    with pytest.raises(UsageError, match="^video goes with audio given as an array"):
        demo.transcribe(EXAMPLE, video=frames)
