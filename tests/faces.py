"""Real-face test media made here: a portrait that ships with matplotlib, moved, turned and scaled frame by
frame into a video with the real ffmpeg, plus helpers to write other media."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import cv2
import numpy as np

from omniavsr_cli.media.ffmpeg import find_ffmpeg
from omniavsr_cli.synthetic.face import portrait

SHARED_GIF = Path(__file__).resolve().parents[2] / "shared" / "media" / "lipreading.gif"


def ffmpeg(*args: str, input: bytes | None = None) -> None:
    subprocess.run([find_ffmpeg().path, "-nostdin", "-y", "-loglevel", "error", *args], input=input, check=True)


def face_motion(frames: int, size: int) -> list[np.ndarray]:
    """2x3 matrices placing the portrait's face in a size x size frame, drifting, nodding and zooming."""
    centre = np.array([264.0, 240.0])  # the middle of the face in the portrait
    matrices = []
    for k in range(frames):
        phase = 2 * math.pi * k / 40
        scale = size / 300 * (1 + 0.06 * math.sin(phase))
        angle = math.radians(5 * math.sin(phase * 0.7))
        rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        shift = np.array([size / 2 + 8 * math.sin(phase * 1.3), size / 2 + 5 * math.cos(phase)])
        matrices.append(np.hstack([rotation, (shift - rotation @ centre)[:, None]]))
    return matrices


def face_frames(frames: int = 50, size: int = 224) -> np.ndarray:
    image = portrait()
    return np.stack(
        [
            cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for matrix in face_motion(frames, size)
        ]
    )


def write_video(path: Path, frames: np.ndarray, *, rate: str = "25", audio_seconds: float | None = None, codec: str = "libx264") -> Path:
    """Frames (T, H, W, 3) RGB to a video file, with a 440 Hz stereo 44.1 kHz tone when ``audio_seconds``."""
    height, width = frames.shape[1:3]
    audio = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={audio_seconds}"] if audio_seconds else []
    ffmpeg(
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        rate,
        "-i",
        "-",
        *audio,
        "-c:v",
        codec,
        *(["-crf", "12", "-pix_fmt", "yuv420p"] if codec == "libx264" else []),
        *(["-ac", "2", "-c:a", "aac", "-shortest"] if audio else []),
        str(path),
        input=np.ascontiguousarray(frames).tobytes(),
    )
    return path


def dlib_lip_centres(frames: np.ndarray) -> list[np.ndarray | None]:
    """An independent estimate: the mean of dlib's 20 lip points per frame (None where dlib finds no face)."""
    from omniavsr_cli.lips.landmarks import DlibLandmarks

    detector = DlibLandmarks()
    centres = []
    for index, frame in enumerate(frames):
        faces = detector.detect(frame, index)
        centres.append(max(faces, key=lambda face: face.size).points[48:68].mean(axis=0) if faces else None)
    return centres


def speech_like(pattern: list[tuple[float, float]], seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """Audio silero-vad hears as speech: an amplitude-modulated tone in each (start, end) of ``pattern``."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = np.zeros_like(t)
    for n, (start, end) in enumerate(pattern):
        inside = (t >= start) & (t < end)
        audio[inside] = 0.3 * np.sin(2 * np.pi * (180 + 20 * (n % 3)) * t[inside]) * (1 + np.sin(2 * np.pi * 5 * t[inside]))
    return audio.astype(np.float32)


def write_media(path: Path, frames: np.ndarray | None, audio: np.ndarray | None, sample_rate: int = 16000) -> Path:
    """A video (frames RGB at 25 fps) and/or audio track (float32 mono) written with the real ffmpeg."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        inputs, maps = [], []
        if frames is not None:
            raw = Path(scratch) / "video.rgb"
            raw.write_bytes(np.ascontiguousarray(frames).tobytes())
            height, width = frames.shape[1:3]
            inputs += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", "25", "-i", str(raw)]
            maps += ["-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p"]
        if audio is not None:
            pcm = Path(scratch) / "audio.f32"
            pcm.write_bytes(audio.astype("<f4").tobytes())
            inputs += ["-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", str(pcm)]
            maps += ["-c:a", "aac" if path.suffix in (".mp4", ".m4a", ".mov") else "pcm_s16le"]
        ffmpeg(*inputs, *maps, str(path))
    return path
