"""Voice activity (silero-vad) and the chunk plan: where a long input is cut before it reaches the model.

Chunks are counted in 25 fps video frames (640 samples each), so an audio chunk and its video chunk are
the same stretch of time and AVSR never has to cut or pad one to the other's length.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from .errors import UsageError, finite_number, parameter
from .timebase import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME

_models = threading.local()  # the silero model keeps per-stream state: one per thread


@dataclass(frozen=True)
class VadOptions:
    """silero-vad's own parameters, with faster-whisper's batched default for silence, and the context around speech.

    ``speech_pad_ms`` is faster-whisper's 400 ms: a model hears each chunk's speech with the silence around it,
    as it heard its training utterances (the demo model: whole clips, 0.3-0.5 s of silence around the sentence).
    """

    threshold: float = 0.5
    min_speech_ms: int = 250
    min_silence_ms: int = 160
    speech_pad_ms: int = 400

    def __post_init__(self) -> None:
        if not (finite_number(self.threshold) and 0 < self.threshold < 1):  # 0 or 1 and above: all speech or none, silently
            raise UsageError(f"{parameter('threshold')} {self.threshold!r}: give a speech probability between 0 and 1")
        for name in ("min_speech_ms", "min_silence_ms", "speech_pad_ms"):
            if not (finite_number(getattr(self, name)) and getattr(self, name) >= 0):
                raise UsageError(f"{parameter(name)} {getattr(self, name)!r}: give a finite number of milliseconds, 0 or more")


def _silero():
    """The silero_vad package. Importing it sets torch to one thread for the whole process (its model.py does);
    the thread count is put back, or every model after it would run on one core."""
    import torch

    threads = torch.get_num_threads()
    import silero_vad

    torch.set_num_threads(threads)
    return silero_vad


def _model():
    """This thread's silero model: the ONNX export in onnxruntime on one thread, as faster-whisper runs it. Its
    probabilities are the TorchScript model's to 1e-5, but torch's thread pool, which transcribe's decoding keeps
    busy, made each 32 ms window wait: 26 ms a window instead of 0.3 on a loaded 2-core machine."""
    if getattr(_models, "silero", None) is None:
        _models.silero = _silero().load_silero_vad(onnx=True)
    return _models.silero


class SpeechDetector:
    """silero's speech probabilities for audio fed block by block, as ``get_speech_timestamps`` computes them for
    the whole (512-sample windows through one model state, the last padded with zeros), so a long input's speech
    is found without holding its audio: what is kept is one float per 32 ms."""

    WINDOW = 512

    def __init__(self):
        self.model = _model()
        self.model.reset_states()
        self.probabilities: list[float] = []
        self.samples = 0
        self._rest = np.zeros(0, dtype=np.float32)  # the samples after the last whole window

    def feed(self, block: np.ndarray) -> None:
        import torch

        data = np.concatenate([self._rest, np.asarray(block, dtype=np.float32)]) if len(self._rest) else np.asarray(block, dtype=np.float32)
        whole = len(data) - len(data) % self.WINDOW
        windows = torch.tensor(data[:whole]).view(-1, self.WINDOW)  # a copy: decoded blocks are read-only
        with torch.inference_mode():
            self.probabilities += [self.model(window, SAMPLE_RATE).item() for window in windows]
        self._rest = data[whole:].copy()
        self.samples += len(block)

    def regions(self, max_region_s: float, options: VadOptions = VadOptions()) -> list[tuple[int, int]]:
        """Speech as (first sample, end sample) pairs, none longer than ``max_region_s``, once all audio is fed.

        silero splits a region that would be longer at the longest silence inside it (or hard at the limit when
        there is none).
        """
        if len(self._rest):
            padding = self.WINDOW - len(self._rest)
            self.feed(np.zeros(padding, dtype=np.float32))
            self.samples -= padding
        if self.samples < SAMPLE_RATE // 10:
            return []
        # No padding from silero: the chunk plan adds the context (plan_speech), which must not count as speech.
        found = _silero().get_speech_timestamps_from_probs(
            self.probabilities,
            sampling_rate=SAMPLE_RATE,
            threshold=options.threshold,
            min_speech_duration_ms=options.min_speech_ms,
            max_speech_duration_s=max_region_s,
            min_silence_duration_ms=options.min_silence_ms,
            speech_pad_ms=0,
            audio_length_samples=self.samples,
        )
        return [(int(r["start"]), int(r["end"])) for r in found]


def speech_regions(audio: np.ndarray, max_region_s: float, options: VadOptions = VadOptions()) -> list[tuple[int, int]]:
    """Speech in 16 kHz mono audio held whole: :meth:`SpeechDetector.regions` after feeding it all at once."""
    detector = SpeechDetector()
    detector.feed(audio)
    return detector.regions(max_region_s, options)


def regions_to_frames(regions: list[tuple[int, int]], samples_per_frame: int = SAMPLES_PER_FRAME) -> list[tuple[int, int]]:
    """Sorted sample ranges -> the video frames that contain them (first frame, end frame), disjoint: regions
    that would share a frame (less than a frame apart) become one."""
    frames: list[tuple[int, int]] = []
    for start, end in regions:
        start, end = start // samples_per_frame, math.ceil(end / samples_per_frame)
        if frames and start < frames[-1][1]:
            frames[-1] = (frames[-1][0], max(frames[-1][1], end))
        elif end > start:
            frames.append((start, end))
    return frames


def plan_chunks(regions: list[tuple[int, int]], max_frames: int, context: int = 0) -> list[tuple[int, int]]:
    """Merge speech regions (in frames, sorted, disjoint) into disjoint chunks of at most ``max_frames``, leaving
    room for ``context`` frames on each side (up to half the chunk) where the regions allow it.

    A chunk grows over the following regions while it fits; where it must end, it ends at the longest pause
    between regions among the cuts that leave it at least half full (any cut when none does), so chunks are
    long (few, well-filled batches) and cut where the speaker paused. A region that leaves no room for the
    context stays whole; one longer than ``max_frames`` on its own is cut into equal pieces.
    """
    fill = max(max_frames - 2 * context, max_frames // 2)
    pieces: list[tuple[int, int]] = []
    for start, end in regions:
        count = math.ceil((end - start) / max_frames)
        bounds = [start + round(i * (end - start) / count) for i in range(count + 1)]
        pieces += list(zip(bounds[:-1], bounds[1:]))
    chunks, first = [], 0
    while first < len(pieces):
        start = pieces[first][0]
        last = first
        while last + 1 < len(pieces) and pieces[last + 1][1] - start <= fill:
            last += 1
        if last == len(pieces) - 1:
            chunks.append((start, pieces[last][1]))
            break
        cuts = range(first, last + 1)
        well_filled = [k for k in cuts if pieces[k][1] - start >= fill // 2] or list(cuts)
        cut = max(well_filled, key=lambda k: (pieces[k + 1][0] - pieces[k][1], k))
        chunks.append((start, pieces[cut][1]))
        first = cut + 1
    return chunks


def pad_chunks(chunks: list[tuple[int, int]], frames: int, max_frames: int, pad: int) -> list[tuple[int, int]]:
    """Widen each chunk (frames, sorted, disjoint) by up to ``pad`` frames of context on each side, as
    faster-whisper and silero pad speech: never before frame 0 or past ``frames``, never past the middle of
    the gap to a neighbour (so no two chunks share a frame), never beyond ``max_frames`` in all."""
    padded = []
    for k, (start, end) in enumerate(chunks):
        low = max(start - pad, 0 if k == 0 else (chunks[k - 1][1] + start) // 2)
        high = min(end + pad, frames if k == len(chunks) - 1 else (end + chunks[k + 1][0]) // 2)
        room = max_frames - (end - start)
        right = min(high - end, max(room - (start - low), room // 2))  # the room shared evenly where both want more
        left = min(start - low, room - right)
        padded.append((start - left, end + right))
    return padded


def plan_speech(regions: list[tuple[int, int]], samples: int, max_frames: int, pad_ms: int) -> list[tuple[int, int]]:
    """The chunks (frames) of an input of ``samples`` samples whose speech silero found at ``regions`` (samples).

    Speech is packed into chunks leaving room for ``pad_ms`` of context on both sides, then each is padded.
    """
    pad = round(pad_ms / 1000 * FPS)
    speech = plan_chunks(regions_to_frames(regions), max_frames, pad)
    return pad_chunks(speech, math.ceil(samples / SAMPLES_PER_FRAME), max_frames, pad)


def fixed_windows(frames: int, max_frames: int) -> list[tuple[int, int]]:
    """``frames`` split into the fewest equal windows of at most ``max_frames`` (no audio to find pauses in)."""
    if frames <= 0:
        return []
    count = math.ceil(frames / max_frames)
    bounds = [round(i * frames / count) for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))
