"""The transcription pipeline: media files in, timed transcripts out.

For each input, in worker threads: probe; stream the 16 kHz audio into a temporary file (never whole in
memory), finding speech block by block on the way (vad.py); plan chunks of
at most ``max_chunk_s`` cut at pauses; stream the 25 fps video through the landmark detector and mouth
cropper (lips/tracking.py) and hand each chunk over as soon as its frames are cropped, with the task it
will be decoded with (``auto``: AVSR where the face is seen, ASR where not, VSR without audio). The main
thread pools the chunks of all inputs, sorts them by task and length, decodes them in batches
(decoding.py) and writes each input's outputs the moment its last chunk is decoded (writers.py).

    chunks  = [chunk for item in items for chunk in chunk_input(item)]      # worker threads
    batches = pack(sorted(chunks, key=(task, token budget, length)))      # main thread, pooled
    outputs = write(segments of each input once all its chunks are done)
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import __version__
from .decoding import BatchDecoder, BatchLimits, DecodingOptions
from .errors import ClipFailed, MediaError, OmniAVSRError, UsageError, finite_number, parameter, whole_number
from .inputs import InputFile
from .lips import speakers
from .lips.synchrony import EnvelopeStream
from .lips.tracking import MouthTrack, check_face_select
from .media.decode import AudioSpool, stream_audio, stream_video
from .media.errors import too_short
from .media.probe import AudioStream, MediaInfo, VideoStream, probe
from .model.loading import LoadedModel, model_description
from .parallel import check_workers, usable_cores, worker_count
from .timebase import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from .timing import StageTimer
from .vad import SpeechDetector, VadOptions, fixed_windows, plan_speech
from .writers import Word

if TYPE_CHECKING:
    from .model.omni import Clip

MODES = ("auto", "asr", "vsr", "avsr")
ROI_SIZE = (96, 96)  # prep-lips output: already a mouth crop, no face detection needed
PRECROPPED = "pre-cropped"
# silero is asked for regions a little shorter than a chunk: rounding them out to whole frames adds up to 80 ms.
VAD_MARGIN_S = 0.1
# Audio outlasting the video by more than this (frames) means the video ended early: the chunks it does not
# cover use the audio alone. Less is the usual rounding at a file's end, and the last chunk just ends with the video.
VIDEO_END_SLACK = FPS // 2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TranscribeOptions:
    mode: str = "auto"
    rates: tuple[int, int] | None = None  # (audio, video); None: the model's finest, e.g. (4, 2)
    max_chunk_s: float = 16.0  # LRS3's segment length, the longest the released models were trained on
    vad: bool = True
    vad_options: VadOptions = VadOptions()
    detector: str = "mediapipe"
    face_select: str = "auto"  # lips.tracking.RULES: the face in sync with the audio where several are seen
    min_face_coverage: float = 0.5  # per chunk: below it, auto mode uses the audio alone
    decoding: DecodingOptions = DecodingOptions()
    batch_size: int | None = None  # None: auto (pack by frames, back off on out-of-memory)
    batch_frames: int = 12_000
    guards: bool = True
    word_timestamps: bool = True  # each segment's words timed from the model's attention (alignment.py)
    # Inputs prepared in parallel: one in a thread of this process, more in worker processes; "auto": one per
    # core where each has several inputs (parallel.worker_count).
    workers: int | str = 1
    pool_bytes: int = 1 << 30  # prepared chunks held for sorting before they must be decoded

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"{parameter('mode')} {self.mode}: choose one of {', '.join(MODES)}")
        check_face_select(self.face_select)
        if not (finite_number(self.max_chunk_s) and self.max_chunk_s >= 1):
            raise UsageError(f"{parameter('max_chunk_s')} {self.max_chunk_s!r}: give a finite number of seconds, at least 1")
        if not (finite_number(self.min_face_coverage) and 0 <= self.min_face_coverage <= 1):
            raise UsageError(f"{parameter('min_face_coverage')} {self.min_face_coverage!r}: give a fraction from 0 to 1")
        for name, value in (("batch_size", self.batch_size), ("batch_frames", self.batch_frames)):
            if value is not None and not whole_number(value, 1):
                raise UsageError(
                    f"{parameter(name)} {value!r}: give a whole number, at least 1" + (" (or None: auto)" if name == "batch_size" else "")
                )
        for name, kind in (("vad_options", VadOptions), ("decoding", DecodingOptions)):
            if not isinstance(getattr(self, name), kind):
                raise UsageError(f"{parameter(name)}: give a {kind.__name__}, not {type(getattr(self, name)).__name__}")
        check_workers(self.workers)

    @property
    def max_chunk_frames(self) -> int:
        return int(self.max_chunk_s * FPS)


# ---------------------------------------------------------------------------------------------- results


@dataclass
class Segment:
    id: int
    start: float
    end: float
    text: str
    tokens: list[int]
    mode: str  # the task this chunk was decoded with: asr, vsr or avsr
    rates: list[int]  # [audio, video]
    face_coverage: float | None  # fraction of the chunk's frames with the face found; None when its video was not read (docs/transcribe.md)
    flags: list[str] = field(default_factory=list)
    temperature: float = 0.0
    words: list[Word] = field(default_factory=list)  # with word timestamps: in order, inside [start, end]
    # Who said it: "face N" (the face track, numbered from 1 in order of appearance) or "off-screen" (speech no
    # visible face is in sync with); None without video. face_box: that face's box, left/top/right/bottom pixels.
    speaker: str | None = None
    face_box: list[float] | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "seek": round(self.start * 100),
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "tokens": self.tokens,
            "temperature": self.temperature,
            "mode": self.mode,
            "rates": self.rates,
            "face_coverage": self.face_coverage,
            "speaker": self.speaker,
            "face_box": self.face_box,
            "flags": self.flags,
            **({"words": [word.to_dict() for word in self.words]} if self.words else {}),
        }


@dataclass
class Transcript:
    """One input's result: whisper's JSON keys (text, segments, language) plus how it was made."""

    id: str
    source: str
    segments: list[Segment]
    info: dict  # duration, model, tool, decoding, detector, ... (docs/transcribe.md#json)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "segments": [s.to_dict() for s in self.segments],
            "language": "en",
            "id": self.id,
            "source": self.source,
            **self.info,
        }

    def segment_lines(self) -> list[dict]:
        return [{"input": self.id, **s.to_dict()} for s in self.segments]


# ----------------------------------------------------------------------------------------------- chunks


@dataclass
class Chunk:
    """A stretch of one input, ready for the model."""

    start_frame: int
    end_frame: int
    task: str
    audio: np.ndarray | None  # 16 kHz float32, 640 samples per frame
    crops: np.ndarray | None  # (T, 96, 96, 3) uint8 mouth crops
    face_coverage: float | None
    flags: list[str] = field(default_factory=list)
    index: int = 0  # its place among its input's chunks, in time order
    media_seconds: float = 0.0  # the input's duration as known when the chunk was made: no segment ends after it
    # With speaker selection: each frame's speaker label (lips.speakers) and each labelled track's (frames, 4) boxes.
    speakers: np.ndarray | None = None
    boxes: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.end_frame - self.start_frame) / FPS

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.audio, self.crops) if a is not None)

    def clip(self) -> Clip:
        from .model.omni import Clip  # here, not at the top: the workers that make chunks never load the model code
        from .model.transforms import video_input

        return Clip(audio=self.audio if self.task != "vsr" else None, video=video_input(self.crops) if self.task != "asr" else None)


@dataclass(frozen=True)
class ProbedFile(InputFile):
    """A file whose probe is already done (Model.transcribe gives the duration at the call): not probed again."""

    media: MediaInfo

    def info(self) -> MediaInfo:
        return self.media


@dataclass
class ArrayInput:
    """Media the caller decoded: 16 kHz mono float audio and/or 25 fps RGB frames (T, H, W, 3) uint8, which are
    taken as mouth crops when 96x96 (as prep-lips writes them). Both start at time 0."""

    clip_id: str
    audio: np.ndarray | None = None
    frames: np.ndarray | None = None

    BLOCK = 60 * SAMPLE_RATE  # audio is handed to the VAD in the blocks a file would stream in

    def __post_init__(self) -> None:
        if self.audio is None and self.frames is None:
            raise UsageError(f"give {parameter('audio')} or {parameter('video')} (or both)")
        if self.audio is not None:
            self.audio = np.asarray(self.audio)
            if self.audio.ndim != 1 or not np.issubdtype(self.audio.dtype, np.floating):
                raise UsageError(
                    f"{parameter('audio')}: give 16 kHz mono samples as a 1-D float array, not {self.audio.dtype} {self.audio.shape}"
                )
            self.audio = self.audio.astype(np.float32, copy=False)
        if self.frames is not None:
            self.frames = np.asarray(self.frames)
            if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
                raise UsageError(
                    f"{parameter('video')}: give 25 fps RGB frames as a (frames, height, width, 3) uint8 array, "
                    f"not {self.frames.dtype} {self.frames.shape}"
                )

    @property
    def path(self) -> Path:
        """What messages call it."""
        return Path(f"<{self.clip_id}>")

    def info(self) -> MediaInfo:
        video = None
        if self.frames is not None:
            height, width = self.frames.shape[1:3]
            video = VideoStream(width, height, FPS, FPS, False, "rawvideo", len(self.frames), duration=len(self.frames) / FPS)
        audio = AudioStream(SAMPLE_RATE, 1, "pcm_f32le") if self.audio is not None else None
        seconds = max(len(self.audio) / SAMPLE_RATE if self.audio is not None else 0.0, video.duration if video else 0.0)
        return MediaInfo(str(self.path), "array", seconds, video, audio)


def _audio_blocks(item: InputFile | ArrayInput, info: MediaInfo) -> Iterator[np.ndarray]:
    if isinstance(item, ArrayInput):
        return (item.audio[start : start + item.BLOCK] for start in range(0, len(item.audio), item.BLOCK))
    return stream_audio(item.path, info=info)


def _video_chunks(item: InputFile | ArrayInput, info: MediaInfo) -> Callable[[], Iterable[np.ndarray]]:
    """The frames in (n, H, W, 3) chunks, from the start each time it is called."""
    if isinstance(item, ArrayInput):
        return lambda: [item.frames]
    return lambda: stream_video(item.path, info=info)


@dataclass
class InputState:
    """What the pipeline knows about one input while it is in flight."""

    index: int
    item: InputFile
    started: float
    info: MediaInfo | None = None
    duration: float = 0.0
    detector: str | None = None
    face_coverage: float | None = None
    speech_seconds: float = 0.0
    vad: bool = False  # the chunks were planned from VAD regions (not fixed windows)
    flags: list[str] = field(default_factory=list)  # video_ended_early
    chunks: int = 0  # handed to the main thread so far
    decoded: int = 0  # chunks decoded so far
    prepared: bool = False  # every chunk has been handed over
    segments: list[Segment] = field(default_factory=list)
    timer: StageTimer = field(default_factory=StageTimer)  # this input's stages, added to the run's when it is done
    cancel: threading.Event = field(default_factory=threading.Event)  # set when the run stops: preparing ends early

    LEARNT = ("info", "duration", "detector", "face_coverage", "speech_seconds", "vad", "flags", "timer")

    def learnt(self) -> dict:
        """What the worker that prepared the input found out, for the decoding side's state of it."""
        return {name: getattr(self, name) for name in self.LEARNT}

    def learn(self, learnt: dict) -> None:
        for name, value in learnt.items():
            setattr(self, name, value)


def _decide(options: TranscribeOptions, has_audio: bool, coverage: float | None, off_screen: bool = False) -> tuple[str, list[str]]:
    """The task for one chunk and its flags; ``off_screen``: the speech is not in sync with any face seen."""
    low = coverage is not None and coverage < options.min_face_coverage
    flags = ["low_face_coverage"] if low else []
    if options.mode != "auto":
        return options.mode, (flags + (["off_screen"] if off_screen else []) if options.mode != "asr" else [])
    if coverage is None or (low and has_audio):
        return "asr", []
    if off_screen and has_audio:
        return "asr", ["off_screen"]  # the lips seen are not the speaker's
    return ("avsr" if has_audio else "vsr"), flags


def _plan(
    item: InputFile,
    info: MediaInfo,
    options: TranscribeOptions,
    state: InputState,
    audio: AudioSpool | None,
    envelope: EnvelopeStream | None = None,
) -> list[tuple[int, int]]:
    """The input's chunks (frames). With audio, first decode it all into ``audio``, finding the speech on the way
    (and feeding ``envelope``, for speaker selection)."""
    if audio is None:  # lip reading only: nothing to find pauses in
        if envelope is not None:
            try:
                with contextlib.closing(iter(_audio_blocks(item, info))) as blocks:
                    for block in blocks:
                        if state.cancel.is_set():
                            return []
                        with state.timer.timed("speakers"):
                            envelope.feed(block)
            except MediaError:  # the model reads only the lips: audio that breaks off leaves the rest without evidence
                pass
        return fixed_windows(math.ceil(state.duration * FPS), options.max_chunk_frames)
    detector = SpeechDetector() if options.vad else None
    with contextlib.closing(iter(_audio_blocks(item, info))) as blocks:
        while not state.cancel.is_set():
            with state.timer.timed("decode_audio"):
                block = next(blocks, None)
            if block is None:
                break
            audio.append(block)
            if envelope is not None:
                with state.timer.timed("speakers"):
                    envelope.feed(block)
            if detector is not None:
                with state.timer.timed("vad"):
                    detector.feed(block)
    state.duration = max(state.duration, audio.samples / SAMPLE_RATE)
    state.vad = options.vad
    if state.cancel.is_set():
        return []
    if detector is None:
        return fixed_windows(math.ceil(audio.samples / SAMPLES_PER_FRAME), options.max_chunk_frames)
    with state.timer.timed("vad"):
        regions = detector.regions(options.max_chunk_s - VAD_MARGIN_S, options.vad_options)
    return plan_speech(regions, audio.samples, options.max_chunk_frames, options.vad_options.speech_pad_ms)


def _crop_stream(
    item: InputFile,
    info: MediaInfo,
    options: TranscribeOptions,
    state: InputState,
    envelope: EnvelopeStream | None,
    spans: list[tuple[int, int]],
):
    """(frame index, crop) pairs, a function giving the per-frame face mask seen so far, and the speaker labels
    (lips.speakers.SpeakerCrops, decided per chunk; None without speaker selection)."""
    if info.video.display_size == ROI_SIZE:
        state.detector = PRECROPPED
        detected = _precropped_mask(item.path) if isinstance(item, InputFile) else None

        def frames() -> Iterator[tuple[int, np.ndarray]]:
            index = 0
            for chunk in _video_chunks(item, info)():
                for frame in chunk:
                    yield index, frame
                    index += 1

        return frames(), lambda: detected, None
    state.detector = options.detector
    track = MouthTrack(
        item.path,
        info,
        options.detector,
        options.face_select,
        clip_id=item.clip_id,
        timer=state.timer,
        video=_video_chunks(item, info),
        envelope=None if envelope is None else envelope.envelope,
        blocks=spans,
    )
    return track.crops(), lambda: track.detected, track.speakers


def _precropped_mask(path: Path) -> np.ndarray | None:
    """prep-lips writes which frames had a face beside the crops; without it every frame counts as seen."""
    beside = path.with_name(path.stem + ".landmarks.npz")
    try:
        with np.load(beside, allow_pickle=False) as data:
            return np.asarray(data["detected"], dtype=bool)
    except (OSError, KeyError, ValueError):
        return None


def chunk_input(item: InputFile, options: TranscribeOptions, state: InputState, min_video_frames: int = 1) -> Iterator[Chunk]:
    """Yield one input's chunks, each as soon as it is ready; ``state`` collects what is learnt on the way.

    ``min_video_frames`` is the fewest frames that make a video token: a chunk the video leaves shorter (or, by
    more than VIDEO_END_SLACK, does not cover) uses the audio alone, and an input without audio fails E_TOO_SHORT.
    """
    with state.timer.timed("probe"):
        info = state.info = item.info() if isinstance(item, ArrayInput | ProbedFile) else probe(item.path)
    state.duration = info.duration or 0.0
    mode = options.mode
    if mode in ("asr", "avsr"):
        info.require_audio()
    if mode in ("vsr", "avsr"):
        info.require_video()
    with AudioSpool() if info.audio is not None and mode != "vsr" else contextlib.nullcontext() as audio:
        # The audio says who speaks even when the model only reads lips (vsr): it is then decoded for that alone.
        by_sync = options.face_select in speakers.RULES and info.video is not None and info.audio is not None and mode != "asr"
        envelope = EnvelopeStream() if by_sync else None
        spans = _plan(item, info, options, state, audio, envelope)
        state.speech_seconds = sum(end - start for start, end in spans) / FPS
        yield from _chunks(item, info, options, state, audio, envelope, spans, min_video_frames)


def _chunks(
    item: InputFile,
    info: MediaInfo,
    options: TranscribeOptions,
    state: InputState,
    audio: AudioSpool | None,
    envelope: EnvelopeStream | None,
    spans: list[tuple[int, int]],
    min_video_frames: int,
) -> Iterator[Chunk]:
    """chunk_input's chunks once the plan is made: each as soon as the video stream has passed its end."""
    mode = options.mode
    who: speakers.SpeakerCrops | None = None

    def make(k: int, crops: list | None, detected: np.ndarray | None) -> Chunk | None:
        start, end = spans[k]
        coverage, labels, boxes = None, None, {}
        if crops is not None:
            covered = min(end, start + len(crops))
            if covered - start < min_video_frames or (audio is not None and covered < end - VIDEO_END_SLACK):
                crops = None  # the video ended before or early in this chunk
            else:
                end = covered  # at most the usual rounding: the chunk ends with the video
                coverage = 1.0 if detected is None or len(detected) < end else round(float(detected[start:end].mean()), 4)
                if who is not None:
                    labels = np.array([who.labels.get(frame, speakers.UNDECIDED) for frame in range(start, end)])
                    boxes = {track: who.box_rows(track, start, end) for track in set(labels.tolist()) if track >= 0}
        task, flags = _decide(options, audio is not None, coverage, labels is not None and speakers.mostly_off_screen(labels))
        if task != "asr" and crops is None:
            if audio is None:
                return None  # nothing left to read the lips from, and no audio
            task, flags = "asr", []  # also in avsr mode: the speech the video does not cover is still transcribed
        piece = audio.read(start * SAMPLES_PER_FRAME, end * SAMPLES_PER_FRAME) if audio is not None and task != "vsr" else None
        if piece is not None and not len(piece):
            return None
        video = np.stack(crops) if task != "asr" else None
        return Chunk(start, end, task, piece, video, coverage, flags, speakers=labels, boxes=boxes)

    if info.video is None or mode == "asr" or not spans:
        for k in range(len(spans)):
            if (chunk := make(k, None, None)) is not None:
                yield chunk
        return

    stream, detected, who = _crop_stream(item, info, options, state, envelope, spans)
    k, frames, seen, ended = 0, [], 0, False
    try:
        with state.timer.timed("video"):
            for frame_index, crop in stream:
                seen = frame_index + 1
                while k < len(spans) and frame_index >= spans[k][1]:
                    if (chunk := make(k, frames, detected())) is not None:
                        yield chunk
                    k, frames = k + 1, []
                if k == len(spans):
                    break  # the rest of the video holds no speech: stop decoding it
                if frame_index >= spans[k][0]:
                    frames.append(crop)
            else:
                ended = True
    except ClipFailed as error:
        if error.code != "E_NO_FACE" or mode != "auto" or audio is None:
            raise
        frames = None  # no face anywhere: every chunk is ASR
    finally:
        stream.close()
    if ended and audio is None and seen < min_video_frames:
        raise too_short(item.path, seen, min_video_frames)
    if ended and frames is not None and audio is not None and seen < audio.samples / SAMPLES_PER_FRAME - VIDEO_END_SLACK:
        state.flags.append("video_ended_early")
        log.warning(
            "%s: the video ends at %.1f s, the audio at %.1f s; the speech after the video is transcribed from the audio alone",
            item.path,
            seen / FPS,
            audio.samples / SAMPLE_RATE,
        )
    mask = detected() if frames is not None else None
    state.face_coverage = 0.0 if frames is None else (round(float(mask.mean()), 4) if mask is not None and len(mask) else 1.0)
    for rest in range(k, len(spans)):
        if (chunk := make(rest, frames, mask)) is not None:
            yield chunk
        frames = None if frames is None else []


# --------------------------------------------------------------------------------------------- pipeline


@dataclass
class ChunkDecoded:
    """A chunk's segments (one, or one per speaker turn), the moment it is decoded. Inputs interleave, and one
    input's chunks come out of time order (they are decoded in batches sorted by length); ``chunk`` is its
    place among the input's chunks, and its segments' ``id`` is that place until the input is done, when the
    segments are numbered in time order."""

    index: int  # the input's place in the list given to Pipeline.run
    item: InputFile
    chunk: int
    segments: list[Segment]
    seconds: float  # the chunk's length


@dataclass
class InputDone:
    """One input's outcome: its transcript, or the error that stopped it (the other inputs go on)."""

    index: int
    item: InputFile
    transcript: Transcript | None
    error: OmniAVSRError | None
    seconds: float  # from the start of its preparation to its last segment

    @property
    def ok(self) -> bool:
        return self.error is None


_DONE = "workers-done"  # a worker's last event (a string: it crosses process boundaries)
# A worker process that has not ended this long after the run stopped is terminated (SIGTERM, on which it unwinds
# and removes its temporary files); one still starting up (importing torch) would otherwise hold up the exit.
WORKER_EXIT_S = 1.0


def prepare_inputs(work, events, stop, options: TranscribeOptions, min_video_frames: int) -> None:
    """A worker: prepare the inputs taken from ``work`` (pairs of index and InputFile, None for the end) and send
    their events to ``events``: ("start", index, item), ("chunk", index, chunk) as each is ready, then
    ("done", index, what was learnt) or ("failed", index, error); (_DONE,) last. Stops early once ``stop`` is set."""

    def send(event: tuple) -> bool:
        """False once the run is stopping and nobody reads the events any more."""
        while not stop.is_set():
            try:
                events.put(event, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    while not stop.is_set() and (pair := work.get()) is not None:
        index, item = pair
        state = InputState(index, item, time.perf_counter(), cancel=stop)
        if not send(("start", index, item)):
            return
        try:
            # closed here, in this worker, when the run stops: the input's decoder and face tracker end with it
            with contextlib.closing(chunk_input(item, options, state, min_video_frames)) as chunks:
                for chunk in chunks:
                    chunk.index, chunk.media_seconds = state.chunks, state.duration
                    state.chunks += 1
                    if not send(("chunk", index, chunk)):
                        return
            event = ("done", index, state.learnt())
        except OmniAVSRError as error:
            event = ("failed", index, error)
        except Exception as error:  # a bug: this input fails, the others go on
            event = ("failed", index, OmniAVSRError(f"{item.path}: internal error: {type(error).__name__}: {error}", code="E_INTERNAL"))
        if not send(event):
            return
    send((_DONE,))


def _leave_cores(model: LoadedModel, processes: int) -> int | None:
    """While worker processes run beside a model on the CPU, the model's torch threads leave them their cores:
    with both at full strength, OpenMP's waiting threads spin on cores the workers need (measured on 2 cores:
    two workers gave 1.12x one worker's throughput with the model on both cores, 1.35x with it on one).
    Returns the thread count to restore afterwards (None: unchanged)."""
    if not processes or model.device.type != "cpu":
        return None
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, usable_cores() - processes))
    return before


def _worker_process(work, events, stop, options: TranscribeOptions, min_video_frames: int) -> None:
    """prepare_inputs in a process of its own (Pipeline with several workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers through ``stop``
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # the parent's terminate: unwind, clean up
    import torch

    torch.set_num_threads(1)  # silero's few matrix products: one thread per worker, the cores are the workers'
    try:
        prepare_inputs(work, events, stop, options, min_video_frames)
    finally:
        if stop.is_set():
            events.cancel_join_thread()  # nobody reads any more: exit without flushing


class Pipeline:
    """Transcribe inputs with one loaded model; see the module docstring for the flow. Writes nothing: what to do
    with each segment and transcript is the caller's (the CLI writes files, the Python API returns them)."""

    def __init__(self, model: LoadedModel, options: TranscribeOptions):
        self.tokenizer = model.require_tokenizer()
        # A model with a short audio window cannot take more; one trained on short clips transcribes no more.
        longest = min(float(model.config.whisper.window_seconds), model.config.longest_chunk_seconds)
        if options.max_chunk_s > longest:
            options = replace(options, max_chunk_s=longest)
        self.model, self.options = model, options
        self.rates = model.config.check_rates(options.rates)
        limits = BatchLimits(size=options.batch_size or 32, frames=options.batch_frames, adaptive=options.batch_size is None)
        if options.batch_size is not None:
            limits.frames = 10**9
        self.timer = StageTimer()  # seconds per stage over the run: each input's, and the model's encoders and llm
        # Word timings: the model's calibrated alignment heads (omniavsr align-heads), else whisper's default.
        from . import alignment

        self.word_heads, self.heads_calibrated = alignment.heads_for(model.config) if options.word_timestamps else (None, False)
        self.decoder = BatchDecoder(
            model.module, self.rates, options.decoding, limits, guards=options.guards, timer=self.timer, word_heads=self.word_heads
        )
        self.tokens_decoded = 0
        self._stop = threading.Event()  # set when the run stops (a process-shared event with worker processes)
        self._ready: list[ChunkDecoded | InputDone] = []
        self.pending: list[tuple[InputState, Chunk]] = []
        self.in_flight: dict[int, InputState] = {}

    def run(self, items: list[InputFile], on_chunk: Callable[[int, Chunk], None] | None = None) -> Iterator[ChunkDecoded | InputDone]:
        """Transcribe every input, yielding each chunk's segments as it is decoded and each input's outcome as it finishes.

        Lazy: nothing starts before the first ``next``, and closing the iterator (or Ctrl-C) stops the workers.
        ``on_chunk(input index, chunk)`` sees every chunk before it is decoded (bench compares batched decoding with one at a time).
        """
        if not items:
            return
        self._on_chunk = on_chunk or (lambda index, chunk: None)
        count = worker_count(self.options.workers, len(items))
        # One worker shares this process (a thread: no start-up cost); more are processes, so that the Python
        # parts of decoding, tracking and cropping run on every core instead of taking turns under the GIL.
        context = multiprocessing.get_context("spawn") if count > 1 else None
        work = context.Queue() if context else queue.Queue()
        events = context.Queue(maxsize=64) if context else queue.Queue(maxsize=64)
        self._stop = context.Event() if context else threading.Event()
        for pair in enumerate(items):
            work.put(pair)
        for _ in range(count):
            work.put(None)  # one end mark per worker
        arguments = (work, events, self._stop, self.options, self.model.module.min_video_frames(self.rates[1]))
        if context:
            workers = [context.Process(target=_worker_process, args=arguments, daemon=True) for _ in range(count)]
        else:
            workers = [threading.Thread(target=prepare_inputs, args=arguments, daemon=True)]
        for worker in workers:
            worker.start()
        running = len(workers)
        restore_threads = _leave_cores(self.model, count if context else 0)
        try:
            while running:
                yield from self.take_ready()
                try:
                    event = events.get(timeout=0.5)
                except queue.Empty:
                    self._decode(everything=True)  # the workers are slow: keep the model busy meanwhile
                    continue
                kind = event[0]
                if kind == _DONE:
                    running -= 1
                elif kind == "start":
                    self.in_flight[event[1]] = InputState(event[1], event[2], time.perf_counter())
                elif kind == "chunk":
                    state = self.in_flight[event[1]]
                    state.chunks += 1
                    self._on_chunk(event[1], event[2])
                    self.pending.append((state, event[2]))
                    self._decode(everything=sum(c.nbytes for _, c in self.pending) > self.options.pool_bytes)
                elif kind == "done":
                    self.add_prepared(self.in_flight[event[1]], event[2])
                elif kind == "failed":
                    self.add_failed(self.in_flight[event[1]], event[2])
            self._decode(everything=True)
            yield from self.take_ready()
        finally:
            # Workers must leave native code (ffmpeg pipes, FaceMesh, silero) before the interpreter ends: a thread
            # still inside C++ then is unwound by force and aborts the process (exit 134 instead of 130).
            self._stop.set()
            if restore_threads is not None:
                import torch

                torch.set_num_threads(restore_threads)
            for worker in workers:
                worker.join(timeout=None if isinstance(worker, threading.Thread) else WORKER_EXIT_S)
                if not isinstance(worker, threading.Thread) and worker.is_alive():
                    worker.terminate()
                    worker.join(timeout=WORKER_EXIT_S)
                    if worker.is_alive():  # inside native code that does not return: no cleanup is possible
                        worker.kill()

    def take_ready(self) -> Iterator[ChunkDecoded | InputDone]:
        while self._ready:
            yield self._ready.pop(0)

    # ........................................................................ decoding

    def _decode(self, everything: bool) -> None:
        """Decode the pooled chunks: all of them, or only full batches."""
        by_task: dict[str, list[tuple[InputState, Chunk]]] = {}
        for pair in self.pending:
            by_task.setdefault(pair[1].task, []).append(pair)
        for task, members in sorted(by_task.items()):
            for batch, full in self.decoder.batches([chunk.seconds for _, chunk in members]):
                if everything or full:
                    self._decode_batch(task, [members[i] for i in batch])

    def _decode_batch(self, task: str, pairs: list[tuple[InputState, Chunk]]) -> None:
        chosen = {id(chunk) for _, chunk in pairs}
        self.pending = [p for p in self.pending if id(p[1]) not in chosen]
        for (state, chunk), segments in zip(pairs, self.decode(task, [chunk for _, chunk in pairs])):
            self.add_decoded(state, chunk.index, segments, chunk.seconds)

    def decode_pooled(self, chunks: list[Chunk]) -> list[list[Segment]]:
        """Each chunk's segments, the chunks decoded in batches by task and token budget as the pipeline does
        (the Ray path's model actors decode the chunks they are given with it)."""
        segments: list[list[Segment]] = [[] for _ in chunks]
        by_task: dict[str, list[int]] = {}
        for k, chunk in enumerate(chunks):
            by_task.setdefault(chunk.task, []).append(k)
        for task, members in sorted(by_task.items()):
            for batch, _full in self.decoder.batches([chunks[k].seconds for k in members]):
                chosen = [members[i] for i in batch]
                for k, decoded in zip(chosen, self.decode(task, [chunks[k] for k in chosen])):
                    segments[k] = decoded
        return segments

    def decode(self, task: str, chunks: list[Chunk]) -> list[list[Segment]]:
        """One batch of chunks of one task -> each chunk's segments (one, or one per speaker turn)."""
        results = self.decoder.decode([chunk.clip() for chunk in chunks], task)
        tokenizer = self.tokenizer
        decoded = []
        for chunk, result in zip(chunks, results):
            self.tokens_decoded += len(result.ids)
            start = chunk.start_frame / FPS
            end = max(min(chunk.end_frame / FPS, chunk.media_seconds) if chunk.media_seconds else chunk.end_frame / FPS, start)
            words = self._words(result, task, start, end)
            if words:  # as whisper does: the segment spans its words, not the silence the chunk was padded with
                start, end = words[0].start, words[-1].end
            whole = Segment(
                id=chunk.index,
                start=round(start, 3),
                end=round(end, 3),
                text=tokenizer.decode(result.ids, skip_special_tokens=True, clean_up_tokenization_spaces=False),
                tokens=result.ids,
                mode=task,
                rates=list(self.rates),
                face_coverage=chunk.face_coverage,
                flags=chunk.flags + result.flags + (["retried"] if result.retried else []),
                temperature=self.options.decoding.temperature if self.options.decoding.sample else 0.0,
                words=words,
            )
            decoded.append(self._by_speaker(whole, chunk))
        return decoded

    # The bookkeeping of each input's outcome, also driven from outside run() (cluster.py gathers Ray's rows with it).

    def add_prepared(self, state: InputState, learnt: dict) -> None:
        """The worker has handed over every chunk of the input (``state.chunks`` of them) and what it learnt."""
        state.learn(learnt)
        state.prepared = True
        self._finish_if_complete(state)

    def add_decoded(self, state: InputState, chunk: int, segments: list[Segment], seconds: float) -> None:
        state.segments.extend(segments)
        state.decoded += 1
        self._ready.append(ChunkDecoded(state.index, state.item, chunk, segments, seconds))
        self._finish_if_complete(state)

    def _by_speaker(self, segment: Segment, chunk: Chunk) -> list[Segment]:
        """The segment attributed to its speaker; split where the speaker changes between its words."""
        labels = chunk.speakers
        if labels is None:
            return [segment]
        if "off_screen" in chunk.flags:
            return [replace(segment, speaker=speakers.speaker_name(speakers.OFF_SCREEN))]
        from . import alignment

        pieces = alignment.split_words(segment.tokens, self.tokenizer) if segment.words else []
        if len(pieces) != len(segment.words):  # no word timings: the chunk's main speaker has it all
            return [self._attributed(segment, chunk, speakers.main_label(labels))]
        turns: list[tuple[int, list[int]]] = []  # (label, word indices)
        for k, word in enumerate(segment.words):
            first = min(max(int(word.start * FPS) - chunk.start_frame, 0), len(labels) - 1)
            last = max(math.ceil(word.end * FPS) - chunk.start_frame, first + 1)
            label = speakers.main_label(labels[first:last])
            if turns and (label == turns[-1][0] or label == speakers.UNDECIDED):
                turns[-1][1].append(k)
            else:
                turns.append((label, [k]))
        parts = []
        for label, indices in turns:
            words = [segment.words[k] for k in indices]
            tokens = segment.tokens[pieces[indices[0]][1][0] : pieces[indices[-1]][1][-1] + 1]
            text = self.tokenizer.decode(tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            part = replace(segment, start=words[0].start, end=words[-1].end, text=text, tokens=tokens, words=words)
            parts.append(self._attributed(part, chunk, label))
        return parts

    @staticmethod
    def _attributed(segment: Segment, chunk: Chunk, label: int) -> Segment:
        """The segment with its speaker and, for a face, the face's median box over the segment."""
        box = None
        if label >= 0 and label in chunk.boxes:
            first = max(int(segment.start * FPS) - chunk.start_frame, 0)
            rows = chunk.boxes[label][first : max(math.ceil(segment.end * FPS) - chunk.start_frame, first + 1)]
            rows = rows[~np.isnan(rows).any(axis=1)]
            if not len(rows):
                rows = chunk.boxes[label][~np.isnan(chunk.boxes[label]).any(axis=1)]
            box = [round(float(v), 1) for v in np.median(rows, axis=0)] if len(rows) else None
        return replace(segment, speaker=speakers.speaker_name(label), face_box=box)

    def _words(self, result, task: str, start: float, end: float) -> list[Word]:
        """The segment's timed words (none without word timestamps or without text)."""
        if result.attention is None:
            return []
        from . import alignment
        from .model.omni import TASK_MODALITIES

        steps = alignment.seconds_per_position(self.rates)
        with self.timer.timed("words"):
            return alignment.align_words(result.attention, result.ids, self.tokenizer, steps, start, end, modalities=TASK_MODALITIES[task])

    # ......................................................................... outcomes

    def _finish_if_complete(self, state: InputState) -> None:
        if not state.prepared or state.index not in self.in_flight or state.decoded < state.chunks:
            return
        del self.in_flight[state.index]
        state.segments.sort(key=lambda s: (s.id, s.start))  # ids are still their chunks' places
        for number, segment in enumerate(state.segments):
            segment.id = number
        transcript = Transcript(state.item.clip_id, str(state.item.path), state.segments, self._info(state))
        # "video" timed the whole tracking loop, "landmarks" the detector and "speakers" the speaker choice inside
        # it: video is decoding and cropping
        state.timer.add("video", -state.timer.seconds.get("landmarks", 0.0) - state.timer.seconds.get("speakers", 0.0))
        self.timer.merge(state.timer)
        self._ready.append(InputDone(state.index, state.item, transcript, None, round(time.perf_counter() - state.started, 3)))

    def add_failed(self, state: InputState, error: OmniAVSRError) -> None:
        self.in_flight.pop(state.index, None)
        self.pending = [p for p in self.pending if p[0] is not state]
        self._ready.append(InputDone(state.index, state.item, None, error, round(time.perf_counter() - state.started, 3)))

    def _info(self, state: InputState) -> dict:
        options = self.options
        flags = ([] if state.segments else ["no_speech"]) + state.flags
        return {
            "duration": round(state.duration, 3),
            "speech_duration": round(state.speech_seconds, 3),
            "requested_mode": options.mode,
            "rates": list(self.rates),
            "face_coverage": state.face_coverage,
            "detector": state.detector,
            "timing": "vad_chunk" if state.vad else "fixed_window",
            "flags": flags,
            "model": model_description(self.model),
            "tool": {"name": "omniavsr", "version": __version__},
            "decoding": {
                **asdict(options.decoding),
                "max_chunk_s": options.max_chunk_s,
                "guards": options.guards,
                "word_timestamps": {"heads": self.word_heads, "calibrated": self.heads_calibrated} if self.word_heads else None,
                "vad": asdict(options.vad_options) if state.vad else None,
            },
        }


class Model(LoadedModel):
    """A loaded model ready to transcribe: the plain ``nn.Module`` (:attr:`module`) with its tokenizer, directory,
    device and dtype (model.loading.LoadedModel). Made by :func:`load_model`; see docs/python.md."""

    def transcribe(
        self,
        media: str | Path | np.ndarray | None,
        options: TranscribeOptions | None = None,
        *,
        video: np.ndarray | None = None,
        **option_values,
    ) -> tuple[Iterator[Segment], dict]:
        """``(segments, info)`` for one input, as faster-whisper returns them.

        ``media`` is a media file, or audio you decoded yourself (16 kHz mono floats); ``video`` adds (or, with
        ``media=None``, is) video you decoded yourself: 25 fps RGB frames (T, H, W, 3) uint8, 96x96 ones taken as
        mouth crops. Both arrays start at time 0.

        ``segments`` is lazy and in time order: decoding starts at the first ``next`` and each segment comes as
        soon as it and every earlier one are decoded. ``info`` is the JSON output's keys (docs/transcribe.md#json):
        ``duration`` at once, the rest (``face_coverage``, ``flags``, ...) once the last segment is out.
        Options are :class:`TranscribeOptions` fields (``mode="avsr", rates=(4, 2)``) or ``options=``.
        A failure raises its error by kind (omniavsr_cli.errors).
        """
        options = replace(options or TranscribeOptions(), **option_values)
        pipeline = Pipeline(self, options)  # the options are checked now, not at the first segment
        if isinstance(media, str | Path):
            if video is not None:
                raise UsageError(f"{parameter('video')} goes with audio given as an array, not with a file")
            item: ProbedFile | ArrayInput = ProbedFile(Path(media), Path(media).stem, probe(Path(media)))
            info: dict = {"duration": item.info().duration}
        else:
            item = ArrayInput("array", audio=media, frames=video)
            info = {"duration": item.info().duration}
        return self._segments(pipeline, item, info), info

    @staticmethod
    def _segments(pipeline: Pipeline, item: InputFile | ArrayInput, info: dict) -> Iterator[Segment]:
        decoded: dict[int, list[Segment]] = {}
        following, number = 0, 0
        for event in pipeline.run([item]):
            if isinstance(event, ChunkDecoded):
                decoded[event.chunk] = event.segments
                while following in decoded:
                    for segment in decoded.pop(following):
                        segment.id, number = number, number + 1  # the number the finished transcript gives it
                        yield segment
                    following += 1
            elif not event.ok:
                raise event.error
            else:
                info.update(event.transcript.info)
                for chunk in sorted(decoded):
                    for segment in decoded[chunk]:
                        segment.id, number = number, number + 1
                        yield segment

    def transcribe_many(
        self, paths: list[str | Path], options: TranscribeOptions | None = None, batch_size: int | str = "auto", **option_values
    ) -> Iterator[InputDone]:
        """One :class:`InputDone` per file as each finishes (not in the order given; ``result.index`` says which),
        chunks of all files pooled into the same batches. A file that fails is a result with its ``error``."""
        options = replace(options or TranscribeOptions(), batch_size=None if batch_size == "auto" else int(batch_size), **option_values)
        pipeline = Pipeline(self, options)  # the options are checked now, not at the first result
        if isinstance(paths, str | Path):  # a string is iterable: it would be taken as one file per character
            raise UsageError(f"{parameter('paths')} is one file ({paths}): give a list of files, or call transcribe() for one")
        items = []
        for n, path in enumerate(paths):
            if not isinstance(path, str | Path):
                raise UsageError(f"{parameter('paths')}[{n}] is a {type(path).__name__}: give file paths (arrays go to transcribe())")
            items.append(InputFile(Path(path), str(n)))
        return (event for event in pipeline.run(items) if isinstance(event, InputDone))


def load_model(name_or_path: str | Path = "demo", device: str | None = None, dtype=None) -> Model:
    """A model by installed name (``omniavsr weights list``) or directory, on ``device`` (default: the GPU if
    there is one) in ``dtype`` (default: bf16 on a GPU that has it, else float32)."""
    from .model.loading import load_model as load_module

    loaded = load_module(name_or_path, device=device, dtype=dtype)
    return Model(loaded.module, loaded.tokenizer, loaded.directory)
