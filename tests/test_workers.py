"""Worker processes (TranscribeOptions.workers > 1): the same results as one worker, failures included."""

from __future__ import annotations

import numpy as np
from faces import face_frames, speech_like, write_media

from omniavsr_cli.decoding import DecodingOptions
from omniavsr_cli.inputs import InputFile
from omniavsr_cli.model.loading import load_model
from omniavsr_cli.transcribe import ChunkDecoded, InputDone, Pipeline, TranscribeOptions


def test_worker_processes_give_what_one_worker_gives_failures_included(tiny_model, tmp_path):
    frames, audio = face_frames(75, 128), speech_like([(0.3, 1.2), (1.6, 2.7)], 3.0)
    write_media(tmp_path / "face.mp4", frames, audio)
    write_media(tmp_path / "talk.wav", None, audio * 0.5)
    write_media(tmp_path / "noface.mp4", np.full((75, 128, 128, 3), 120, np.uint8), audio)
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100)
    items = [InputFile(tmp_path / name, name) for name in ("face.mp4", "broken.mp4", "talk.wav", "noface.mp4")]
    model = load_model(tiny_model)

    def results(workers: int) -> tuple[dict, int]:
        options = TranscribeOptions(decoding=DecodingOptions(num_beams=1), guards=False, workers=workers)
        events = list(Pipeline(model, options).run(items))
        chunks = sum(isinstance(event, ChunkDecoded) for event in events)
        done = {event.item.clip_id: event for event in events if isinstance(event, InputDone)}
        return {
            name: event.transcript.to_dict() if event.ok else (type(event.error).__name__, event.error.code) for name, event in done.items()
        }, chunks

    alone, alone_chunks = results(1)
    together, together_chunks = results(2)
    assert together == alone and together_chunks == alone_chunks
    assert isinstance(alone["broken.mp4"], tuple), "the broken file fails, in its own result"
    assert alone["face.mp4"]["segments"] and alone["face.mp4"]["face_coverage"] > 0.5
