"""A labelled data set made here, in prep-lips' layout: each clip's audio and video say which clip it is on
their own (a tone of its own pitch; a mouth-sized blob of its own brightness and size), so a model can learn
every transcript from either modality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from faces import write_media

TRANSCRIPTS = ("we have that", "they are not", "what was it", "you do this")


def clip_frames(number: int, frames: int) -> np.ndarray:
    """(T, 96, 96, 3) uint8: a grey background and an ellipse whose brightness and height identify the clip,
    opening and closing over time."""
    yy, xx = np.mgrid[:96, :96]
    video = np.full((frames, 96, 96, 3), 60, dtype=np.uint8)
    for t in range(frames):
        height = (8 + 6 * number) * (1 + 0.3 * np.sin(2 * np.pi * t / 10))
        inside = ((xx - 48) / 30) ** 2 + ((yy - 48) / height) ** 2 <= 1
        video[t][inside] = 100 + 45 * number
    return video


def clip_audio(number: int, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * (250 * 2**number) * t)).astype(np.float32)


def write_dataset(root: Path, count: int = 4, seconds: float = 1.0, suffix: str = ".csv", same_video: bool = False) -> Path:
    """``count`` clips under ``root/rois/spk/`` and their manifest ``root/rois/manifest.csv`` (or .jsonl);
    ``same_video`` gives every clip the first clip's video (only the audio tells them apart)."""
    import json

    clips = root / "rois" / "spk"
    clips.mkdir(parents=True, exist_ok=True)
    frames = round(seconds * 25)
    lines = []
    for number in range(count):
        write_media(clips / f"c{number}.mp4", clip_frames(0 if same_video else number, frames), None)
        write_media(clips / f"c{number}.wav", None, clip_audio(number, seconds))
        text = TRANSCRIPTS[number % len(TRANSCRIPTS)]
        if suffix == ".csv":
            lines.append(f"rois,spk/c{number}.mp4,{frames},,{text}\n")
        else:
            lines.append(
                json.dumps(
                    {"dataset": "rois", "video": f"spk/c{number}.mp4", "audio": f"spk/c{number}.wav", "frames": frames, "text": text}
                )
                + "\n"
            )
    manifest = root / "rois" / f"manifest{suffix}"
    manifest.write_text("".join(lines), encoding="utf-8")
    return manifest
