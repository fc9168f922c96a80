"""Decoding any media into what the model eats: 16 kHz mono float32 audio and 25 fps RGB frames.

Both come from an ffmpeg process reading the file and are yielded in chunks, so a two-hour video never sits
whole in memory. Both timelines start at the container's start: the video goes through ffmpeg's ``fps``
filter (output frame ``i`` is the last input frame whose timestamp rounds to ``i/25`` s, so it is never
more than 20 ms off; frames are duplicated or dropped as needed, and 30, 29.97, 60 fps and variable-rate
video all come out at 25 fps), and the audio is padded or trimmed at its start to the same origin. Frame ``i`` therefore covers audio samples ``640*i`` to ``640*(i+1)``.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..timebase import FPS, SAMPLE_RATE
from . import errors
from .ffmpeg import find_ffmpeg
from .probe import MediaInfo, probe

DEFAULT_CHUNK_BYTES = 64 * 2**20
# The first audio stream as 16 kHz mono, padded or trimmed at its start so that sample 0 is the container's
# time 0 (shared by decoding and by the .wav files prep-lips writes, so both line up with the video frames).
AUDIO_ARGUMENTS = ["-map", "0:a:0", "-vn", "-af", "aresample=async=1:first_pts=0", "-ac", "1", "-ar", str(SAMPLE_RATE)]


def _ffmpeg_output(path: str, output_args: list[str], chunk_bytes: int) -> Iterator[bytes]:
    """Run ffmpeg on ``path`` and yield its stdout in pieces of exactly ``chunk_bytes`` (the last may be shorter)."""
    command = [find_ffmpeg().path, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", path, *output_args, "pipe:1"]
    # stderr goes to a file: a pipe nobody reads while stdout is drained could fill up and stall ffmpeg.
    with tempfile.TemporaryFile() as log:
        # Own process group: Ctrl-C reaches only omniavsr, which stops ffmpeg itself (a killed ffmpeg would
        # otherwise look like a corrupt file).
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, process_group=0)
        try:
            while data := process.stdout.read(chunk_bytes):
                yield data
            returncode = process.wait()
        finally:
            if process.poll() is None:  # the consumer stopped early
                process.kill()
                process.wait()
            process.stdout.close()
        if returncode != 0:
            log.seek(0)
            lines = log.read().decode(errors="replace").strip().splitlines()
            raise errors.corrupt(path, lines[-1] if lines else f"ffmpeg exited with {returncode}")


def _check_complete(path: str, decoded_seconds: float, declared_seconds: float | None) -> None:
    """A file cut short often decodes without an ffmpeg error; its declared duration gives it away."""
    if declared_seconds and decoded_seconds < declared_seconds - max(1.0, 0.05 * declared_seconds):
        raise errors.corrupt(path, f"decoded {decoded_seconds:.1f} s of the {declared_seconds:.1f} s its header declares")


def _checked(path: str | Path) -> str:
    name = str(path)
    if not Path(name).exists():
        raise errors.missing_file(name)
    return name


def stream_audio(path: str | Path, chunk_seconds: float = 60.0, info: MediaInfo | None = None) -> Iterator[np.ndarray]:
    """Yield the first audio stream as 16 kHz mono float32 chunks of ``chunk_seconds`` (the last shorter).

    ``info`` is the file's :func:`probe` result when the caller already has it.
    """
    name = _checked(path)
    info = info or probe(name)
    info.require_audio()
    chunk_bytes = max(1, int(chunk_seconds * SAMPLE_RATE)) * 4
    samples = 0
    for data in _ffmpeg_output(name, [*AUDIO_ARGUMENTS, "-f", "f32le"], chunk_bytes):
        samples += len(data) // 4
        yield np.frombuffer(data, dtype="<f4").astype(np.float32, copy=False)
    _check_complete(name, samples / SAMPLE_RATE, info.duration)


def load_audio(path: str | Path) -> np.ndarray:
    """The whole audio track as one 16 kHz mono float32 array (use :func:`stream_audio` for long inputs)."""
    chunks = list(stream_audio(path))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


class AudioSpool:
    """Decoded 16 kHz samples kept in an unnamed temporary file (``$TMPDIR``, 230 MB per hour) instead of memory,
    read back a stretch at a time: a long input's audio is decoded once and never held whole."""

    def __init__(self):
        self._file = tempfile.TemporaryFile(prefix="omniavsr-audio-")
        self.samples = 0

    def append(self, block: np.ndarray) -> None:
        self._file.seek(0, 2)
        np.ascontiguousarray(block, dtype="<f4").tofile(self._file)
        self.samples += len(block)

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples ``start`` to ``end`` (clipped to what was appended) as a new float32 array."""
        start, end = max(0, start), min(end, self.samples)
        if end <= start:
            return np.zeros(0, dtype=np.float32)
        self._file.seek(start * 4)
        return np.fromfile(self._file, dtype="<f4", count=end - start).astype(np.float32, copy=False)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> AudioSpool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stream_video(path: str | Path, max_chunk_bytes: int = DEFAULT_CHUNK_BYTES, info: MediaInfo | None = None) -> Iterator[np.ndarray]:
    """Yield the first video stream at 25 fps as uint8 RGB arrays of shape (frames, height, width, 3).

    Each chunk holds as many frames as fit in ``max_chunk_bytes`` (at least one), so memory stays bounded
    whatever the duration and resolution. Rotated phone video comes out upright. A video stream that ends
    before the audio is complete when it reaches its own declared length.
    """
    name = _checked(path)
    info = info or probe(name)
    video = info.require_video()
    width, height = video.display_size
    frame_bytes = width * height * 3
    frames_per_chunk = max(1, max_chunk_bytes // frame_bytes)
    arguments = ["-map", "0:v:0", "-an", "-vf", f"fps={FPS}:start_time=0", "-pix_fmt", "rgb24", "-f", "rawvideo"]
    frames = 0
    for data in _ffmpeg_output(name, arguments, frames_per_chunk * frame_bytes):
        usable = len(data) - len(data) % frame_bytes
        frames += usable // frame_bytes
        yield np.frombuffer(data[:usable], dtype=np.uint8).reshape(-1, height, width, 3)
    _check_complete(name, frames / FPS, video.duration or info.duration)


def load_video(path: str | Path) -> np.ndarray:
    """All frames at 25 fps as one (T, H, W, 3) uint8 array (use :func:`stream_video` for long inputs)."""
    chunks = list(stream_video(path))
    return np.concatenate(chunks) if chunks else np.zeros((0, 0, 0, 3), dtype=np.uint8)
