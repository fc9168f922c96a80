"""Writing what prep-lips produces: the 96x96 mouth-crop video and the 16 kHz mono wav, through ffmpeg.

Both are bit-exact functions of their input (single-threaded x264, no version strings or dates in the
containers), so re-running a preparation gives byte-identical files.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import OutputError
from ..timebase import FPS, SAMPLE_RATE
from . import errors
from .decode import AUDIO_ARGUMENTS
from .ffmpeg import find_ffmpeg

# Visually lossless for 96x96 crops; the training data (auto_avsr's LRS3 crops) used x264's default CRF 23.
VIDEO_CRF = 18
BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1"]


def _failure(log, returncode: int) -> str:
    log.seek(0)
    lines = log.read().decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"ffmpeg exited with {returncode}"


def _rgb_frames_on_stdin(width: int, height: int) -> list[str]:
    """The start of both encoders' ffmpeg commands: 25 fps RGB frames of this size read from stdin."""
    quiet = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    return [find_ffmpeg().path, *quiet, "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(FPS), "-i", "pipe:0"]


@contextlib.contextmanager
def interrupts_held():
    """A Ctrl-C during the block is held and raised as the block ends (in the main thread, where Python handles
    SIGINT; elsewhere the block runs as it is). Start a VideoWriter in one and keep it in a variable the cleanup
    sees: a Ctrl-C between ffmpeg's start and that assignment would leave the encoder running unseen, and at the
    process's exit it finishes its file (end of input) after the caller has cleaned up.

    The Python handler is swapped, not the signal masked: a masked main thread does not stop the kernel from
    handing SIGINT to another thread (FaceMesh's, a reader's), and Python then raises it in the main thread all
    the same (seen as a left .part file on a loaded machine)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            if callable(previous):
                previous(signal.SIGINT, None)
            elif previous == signal.SIG_DFL:
                os.kill(os.getpid(), signal.SIGINT)


class VideoWriter:
    """An H.264 mp4 at 25 fps fed RGB frames one at a time (frames never accumulate in memory)."""

    def __init__(self, destination: Path, width: int, height: int):
        self.destination = destination
        self.frames = 0
        command = [
            *_rgb_frames_on_stdin(width, height),
            "-c:v",
            "libx264",
            "-preset",
            "medium",
            "-crf",
            str(VIDEO_CRF),
            "-pix_fmt",
            "yuv420p",
            "-threads",
            "1",
            *BITEXACT,
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            str(destination),
        ]
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=self._log, process_group=0)  # see decode.py

    def write(self, frame: np.ndarray) -> None:
        try:
            self._process.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        except BrokenPipeError:
            self.close()  # raises with ffmpeg's reason
        self.frames += 1

    def close(self) -> None:
        if self._process.stdin.closed:
            return
        try:
            self._process.stdin.close()
        except BrokenPipeError:
            pass
        returncode = self._process.wait()
        try:
            if returncode != 0:
                raise OutputError(f"{self.destination}: ffmpeg could not write the video ({_failure(self._log, returncode)})")
        finally:
            self._log.close()

    def abort(self) -> None:
        """Stop ffmpeg without waiting for a clean file (the caller deletes it)."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        if not self._process.stdin.closed:
            try:
                self._process.stdin.close()
            except BrokenPipeError:
                pass
        self._log.close()


def write_wav(source: str | Path, destination: Path) -> None:
    """The first audio stream of ``source`` as a 16 kHz mono 16-bit wav aligned with the 25 fps frames."""
    command = [
        find_ffmpeg().path,
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(source),
        *AUDIO_ARGUMENTS,
        "-c:a",
        "pcm_s16le",
        *BITEXACT,
        "-f",
        "wav",
        str(destination),
    ]
    with tempfile.TemporaryFile() as log:
        returncode = subprocess.run(command, stdin=subprocess.DEVNULL, stderr=log, process_group=0).returncode
        if returncode != 0:
            raise errors.corrupt(str(source), _failure(log, returncode))


def write_talking_video(destination: Path, frames: np.ndarray, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Frames (T, H, W, 3) RGB uint8 at 25 fps and a mono float waveform as one H.264 + AAC mp4, bit-exact.

    Encoded under a temporary name beside ``destination`` and renamed when complete: a failed or interrupted
    encode never leaves a broken ``destination``."""
    height, width = frames.shape[1:3]
    with tempfile.NamedTemporaryFile(suffix=".f32") as pcm, tempfile.TemporaryFile() as log, atomic_path(destination) as part:
        pcm.write(np.ascontiguousarray(audio, dtype="<f4").tobytes())
        pcm.flush()
        command = [
            *_rgb_frames_on_stdin(width, height),
            "-f",
            "f32le",
            "-ar",
            str(sample_rate),
            "-ac",
            "1",
            "-i",
            pcm.name,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            str(VIDEO_CRF),
            "-pix_fmt",
            "yuv420p",
            "-threads",
            "1",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            *BITEXACT,
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            str(part),
        ]
        process = subprocess.run(command, input=np.ascontiguousarray(frames, dtype=np.uint8).tobytes(), stderr=log, process_group=0)
        if process.returncode != 0:
            raise OutputError(f"{destination}: ffmpeg could not write the video ({_failure(log, process.returncode)})")
