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
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from . import __version__
from .decoding import BatchDecoder, BatchLimits
from .errors import ExitCode, OmniAVSRError
from .inputs import InputFile
from .lips.tracking import ClipFailed, MouthTrack
from .media.decode import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME, AudioSpool, stream_audio, stream_video
from .media.errors import too_short
from .media.probe import MediaInfo, probe
from .model.loading import model_description
from .model.omni import Clip, DecodingOptions
from .model.transforms import video_input
from .vad import SpeechDetector, VadOptions, fixed_windows, plan_speech
from .writers import WRITERS, json_text, output_path, write_outputs

MODES = ("auto", "asr", "vsr", "avsr")
RUN_LOG = "run.jsonl"
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
    face_select: str = "largest"
    min_face_coverage: float = 0.5  # per chunk: below it, auto mode uses the audio alone
    decoding: DecodingOptions = DecodingOptions()
    batch_size: int | None = None  # None: auto (pack by frames, back off on out-of-memory)
    batch_frames: int = 12_000
    guards: bool = True
    workers: int = 1  # inputs prepared in parallel (threads: ffmpeg and the detectors run outside the GIL)
    pool_bytes: int = 1 << 30  # prepared chunks held for sorting before they must be decoded

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise OmniAVSRError(f"--mode {self.mode}: choose one of {', '.join(MODES)}", code="E_USAGE", exit_code=ExitCode.USAGE)
        if self.max_chunk_s < 1:
            raise OmniAVSRError("--max-chunk-s must be at least 1 second", code="E_USAGE", exit_code=ExitCode.USAGE)

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
    face_coverage: float | None  # fraction of the chunk's frames with the face found; None without video
    flags: list[str] = field(default_factory=list)
    temperature: float = 0.0

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
            "flags": self.flags,
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


@dataclass
class RunRecord:
    """One line of run.jsonl."""

    input: str
    id: str
    status: str  # ok, failed or skipped
    error_code: str | None = None
    error: str | None = None
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    media_seconds: float = 0.0
    chunks: int = 0
    flags: list[str] = field(default_factory=list)  # the transcript's: no_speech, video_ended_early

    def to_json(self) -> str:
        return json_text(asdict(self))


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
    index: int = 0  # its place among its input's chunks, in time order: its segment's id

    @property
    def seconds(self) -> float:
        return (self.end_frame - self.start_frame) / FPS

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.audio, self.crops) if a is not None)

    def clip(self) -> Clip:
        return Clip(audio=self.audio if self.task != "vsr" else None, video=video_input(self.crops) if self.task != "asr" else None)


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
    prepared: bool = False  # every chunk has been handed over
    segments: list[Segment] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    track: MouthTrack | None = None
    cancel: threading.Event = field(default_factory=threading.Event)  # set when the run stops: preparing ends early

    def timed(self, stage: str):
        return _timer(self.stage_seconds, stage)


@contextlib.contextmanager
def _timer(totals: dict[str, float], stage: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        totals[stage] = totals.get(stage, 0.0) + time.perf_counter() - started


def _decide(options: TranscribeOptions, has_audio: bool, coverage: float | None) -> tuple[str, list[str]]:
    """The task for one chunk and its flags."""
    low = coverage is not None and coverage < options.min_face_coverage
    flags = ["low_face_coverage"] if low else []
    if options.mode != "auto":
        return options.mode, (flags if options.mode != "asr" else [])
    if coverage is None or (low and has_audio):
        return "asr", []
    return ("avsr" if has_audio else "vsr"), flags


def _plan(
    item: InputFile, info: MediaInfo, options: TranscribeOptions, state: InputState, audio: AudioSpool | None
) -> list[tuple[int, int]]:
    """The input's chunks (frames). With audio, first decode it all into ``audio``, finding the speech on the way."""
    if audio is None:  # lip reading only: nothing to find pauses in
        return fixed_windows(math.ceil(state.duration * FPS), options.max_chunk_frames)
    detector = SpeechDetector() if options.vad else None
    with contextlib.closing(stream_audio(item.path, info=info)) as blocks:
        while not state.cancel.is_set():
            with state.timed("decode_audio"):
                block = next(blocks, None)
            if block is None:
                break
            audio.append(block)
            if detector is not None:
                with state.timed("vad"):
                    detector.feed(block)
    state.duration = max(state.duration, audio.samples / SAMPLE_RATE)
    state.vad = options.vad
    if state.cancel.is_set():
        return []
    if detector is None:
        return fixed_windows(math.ceil(audio.samples / SAMPLES_PER_FRAME), options.max_chunk_frames)
    with state.timed("vad"):
        regions = detector.regions(options.max_chunk_s - VAD_MARGIN_S, options.vad_options)
    return plan_speech(regions, audio.samples, options.max_chunk_frames, options.vad_options.speech_pad_ms)


def _crop_stream(item: InputFile, info: MediaInfo, options: TranscribeOptions, state: InputState):
    """(frame index, crop) pairs and a function giving the per-frame face mask seen so far."""
    if info.video.display_size == ROI_SIZE:
        state.detector = PRECROPPED
        detected = _precropped_mask(item.path)

        def frames() -> Iterator[tuple[int, np.ndarray]]:
            index = 0
            for chunk in stream_video(item.path, info=info):
                for frame in chunk:
                    yield index, frame
                    index += 1

        return frames(), lambda: detected
    state.detector = options.detector
    track = MouthTrack(item.path, info, options.detector, options.face_select, clip_id=item.clip_id)
    state.track = track
    return track.crops(), lambda: track.detected


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
    with state.timed("probe"):
        info = state.info = probe(item.path)
    state.duration = info.duration or 0.0
    mode = options.mode
    if mode in ("asr", "avsr"):
        info.require_audio()
    if mode in ("vsr", "avsr"):
        info.require_video()
    with AudioSpool() if info.audio is not None and mode != "vsr" else contextlib.nullcontext() as audio:
        spans = _plan(item, info, options, state, audio)
        state.speech_seconds = sum(end - start for start, end in spans) / FPS
        yield from _chunks(item, info, options, state, audio, spans, min_video_frames)


def _chunks(
    item: InputFile,
    info: MediaInfo,
    options: TranscribeOptions,
    state: InputState,
    audio: AudioSpool | None,
    spans: list[tuple[int, int]],
    min_video_frames: int,
) -> Iterator[Chunk]:
    """chunk_input's chunks once the plan is made: each as soon as the video stream has passed its end."""
    mode = options.mode

    def make(k: int, crops: list | None, detected: np.ndarray | None) -> Chunk | None:
        start, end = spans[k]
        coverage = None
        if crops is not None:
            covered = min(end, start + len(crops))
            if covered - start < min_video_frames or (audio is not None and covered < end - VIDEO_END_SLACK):
                crops = None  # the video ended before or early in this chunk
            else:
                end = covered  # at most the usual rounding: the chunk ends with the video
                coverage = 1.0 if detected is None or len(detected) < end else round(float(detected[start:end].mean()), 4)
        task, flags = _decide(options, audio is not None, coverage)
        if task != "asr" and crops is None:
            if audio is None:
                return None  # nothing left to read the lips from, and no audio
            task, flags = "asr", []  # also in avsr mode: the speech the video does not cover is still transcribed
        piece = audio.read(start * SAMPLES_PER_FRAME, end * SAMPLES_PER_FRAME) if audio is not None and task != "vsr" else None
        if piece is not None and not len(piece):
            return None
        video = np.stack(crops) if task != "asr" else None
        return Chunk(start, end, task, piece, video, coverage, flags)

    if info.video is None or mode == "asr" or not spans:
        for k in range(len(spans)):
            if (chunk := make(k, None, None)) is not None:
                yield chunk
        return

    stream, detected = _crop_stream(item, info, options, state)
    k, frames, seen, ended = 0, [], 0, False
    try:
        with state.timed("video"):
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


_DONE = object()


class Pipeline:
    """Transcribe inputs with one loaded model; see the module docstring for the flow."""

    def __init__(
        self,
        model,
        options: TranscribeOptions,
        formats: list[str],
        out_dir: Path | None,
        *,
        stdout=None,
        skip_existing: bool = False,
        on_record: Callable[[RunRecord], None] | None = None,
        on_progress: Callable[[str, float], None] | None = None,
        on_transcript: Callable[[Transcript], None] | None = None,
        on_segment: Callable[[Chunk, Segment], None] | None = None,
    ):
        if model.tokenizer is None:
            raise OmniAVSRError(
                "this model has no tokenizer files; import it again with --tokenizer",
                code="E_NO_TOKENIZER",
                exit_code=ExitCode.MODEL_UNAVAILABLE,
            )
        # A model with a short audio window cannot take more; one trained on short clips transcribes no more.
        longest = min(float(model.config.whisper.window_seconds), model.config.longest_chunk_seconds)
        if options.max_chunk_s > longest:
            options = replace(options, max_chunk_s=longest)
        self.model, self.options, self.formats, self.out_dir, self.stdout = model, options, formats, out_dir, stdout
        self.skip_existing, self.on_record = skip_existing, on_record or (lambda r: None)
        self.on_progress, self.on_transcript = on_progress or (lambda k, v: None), on_transcript or (lambda t: None)
        self.on_segment = on_segment or (lambda c, s: None)
        self.rates = model.config.check_rates(options.rates)
        limits = BatchLimits(size=options.batch_size or 32, frames=options.batch_frames, adaptive=options.batch_size is None)
        if options.batch_size is not None:
            limits.frames = 10**9
        self.decoder = BatchDecoder(model, self.rates, options.decoding, limits, guards=options.guards)
        self.records: list[RunRecord] = []
        self.stage_seconds: dict[str, float] = {}
        self.tokens_decoded = 0
        self._stop = threading.Event()

    # .......................................................................... public

    def run(self, items: list[InputFile], sources: dict[str, str] | None = None) -> list[RunRecord]:
        """Transcribe every input; returns one record per input (ok, failed or skipped), in completion order."""
        self.sources = sources or {}
        todo = []
        for item in items:
            if self.skip_existing and self.out_dir is not None and self._finished(item):
                self._record(
                    RunRecord(
                        input=self._source(item),
                        id=item.clip_id,
                        status="skipped",
                        outputs=[str(output_path(self.out_dir, item.clip_id, f)) for f in self.formats],
                    )
                )
            else:
                todo.append(item)
        if todo:
            self._run(todo)
        return self.records

    # ......................................................................... workers

    def _produce(self, work: queue.Queue, events: queue.Queue) -> None:
        while not self._stop.is_set():
            try:
                index, item = work.get_nowait()
            except queue.Empty:
                break
            state = InputState(index, item, time.perf_counter(), cancel=self._stop)
            if not self._send(events, ("start", state)):
                return
            try:
                # closed here, in this thread, when the run stops: the input's decoder and face tracker end with it
                with contextlib.closing(chunk_input(item, self.options, state, self.model.min_video_frames(self.rates[1]))) as chunks:
                    for chunk in chunks:
                        chunk.index = state.chunks
                        state.chunks += 1
                        if not self._send(events, ("chunk", state, chunk)):
                            return
                event = ("done", state)
            except OmniAVSRError as error:
                event = ("failed", state, error)
            except Exception as error:  # a bug: this input fails, the others go on
                event = ("failed", state, OmniAVSRError(f"{item.path}: internal error: {type(error).__name__}: {error}", code="E_INTERNAL"))
            if not self._send(events, event):
                return
        self._send(events, (_DONE,))

    def _send(self, events: queue.Queue, event: tuple) -> bool:
        """Hand an event to the decoding thread; False once the run is stopping and nobody reads them any more."""
        while not self._stop.is_set():
            try:
                events.put(event, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, items: list[InputFile]) -> None:
        work: queue.Queue = queue.Queue()
        for pair in enumerate(items):
            work.put(pair)
        events: queue.Queue = queue.Queue(maxsize=64)
        workers = [
            threading.Thread(target=self._produce, args=(work, events), daemon=True)
            for _ in range(max(1, min(self.options.workers, len(items))))
        ]
        for worker in workers:
            worker.start()
        running = len(workers)
        self.pending: list[tuple[InputState, Chunk]] = []
        self.in_flight: dict[int, InputState] = {}
        try:
            while running:
                try:
                    event = events.get(timeout=0.5)
                except queue.Empty:
                    self._decode(everything=True)  # the workers are slow: keep the model busy meanwhile
                    continue
                kind = event[0]
                if kind is _DONE:
                    running -= 1
                elif kind == "start":
                    self.in_flight[event[1].index] = event[1]
                elif kind == "chunk":
                    self.pending.append((event[1], event[2]))
                    self._decode(everything=sum(c.nbytes for _, c in self.pending) > self.options.pool_bytes)
                elif kind == "done":
                    event[1].prepared = True
                    self._finish_if_complete(event[1])
                elif kind == "failed":
                    self._fail(event[1], event[2])
            self._decode(everything=True)
        finally:
            # Workers must leave native code (ffmpeg pipes, FaceMesh, silero) before the interpreter ends: a thread
            # still inside C++ then is unwound by force and aborts the process (exit 134 instead of 130).
            self._stop.set()
            for worker in workers:
                worker.join()

    # ........................................................................ decoding

    def _decode(self, everything: bool) -> None:
        """Decode the pooled chunks: all of them, or only full batches."""
        groups: dict[tuple[str, int], list[tuple[InputState, Chunk]]] = {}
        budget = self.options.decoding.max_new_tokens_for
        for pair in sorted(self.pending, key=lambda p: (p[1].task, -p[1].seconds)):
            groups.setdefault((pair[1].task, budget(pair[1].seconds)), []).append(pair)
        for (task, _), members in groups.items():
            limits = self.decoder.limits
            batches = limits.pack([round(c.seconds * FPS) for _, c in members])
            for batch in batches:
                full = len(batch) >= limits.size or (len(batch) + 1) * round(members[batch[0]][1].seconds * FPS) > limits.frames
                if everything or full:
                    self._decode_batch(task, [members[i] for i in batch])

    def _decode_batch(self, task: str, pairs: list[tuple[InputState, Chunk]]) -> None:
        chosen = {id(chunk) for _, chunk in pairs}
        self.pending = [p for p in self.pending if id(p[1]) not in chosen]
        clips = [chunk.clip() for _, chunk in pairs]
        results = self.decoder.decode(clips, task)
        tokenizer = self.model.tokenizer
        for (state, chunk), result in zip(pairs, results):
            self.tokens_decoded += len(result.ids)
            end = min(chunk.end_frame / FPS, state.duration) if state.duration else chunk.end_frame / FPS
            segment = Segment(
                id=chunk.index,
                start=round(chunk.start_frame / FPS, 3),
                end=round(max(end, chunk.start_frame / FPS), 3),
                text=tokenizer.decode(result.ids, skip_special_tokens=True, clean_up_tokenization_spaces=False),
                tokens=result.ids,
                mode=task,
                rates=list(self.rates),
                face_coverage=chunk.face_coverage,
                flags=chunk.flags + result.flags + (["retried"] if result.retried else []),
                temperature=self.options.decoding.temperature if self.options.decoding.sample else 0.0,
            )
            state.segments.append(segment)
            self.on_segment(chunk, segment)
            self.on_progress("chunks", 1)
            self.on_progress("media_seconds", chunk.seconds)
            if self.stdout is not None and self.formats == ["jsonl"]:
                self.stdout.write(json_text({"input": state.item.clip_id, **segment.to_dict()}) + "\n")
                self.stdout.flush()
            self._finish_if_complete(state)

    # ......................................................................... outputs

    def _finish_if_complete(self, state: InputState) -> None:
        if not state.prepared or state.index not in self.in_flight or len(state.segments) < state.chunks:
            return
        del self.in_flight[state.index]
        state.segments.sort(key=lambda s: s.start)
        transcript = Transcript(state.item.clip_id, self._source(state.item), state.segments, self._info(state))
        record = RunRecord(
            input=self._source(state.item),
            id=state.item.clip_id,
            status="ok",
            media_seconds=round(state.duration, 3),
            chunks=len(state.segments),
            flags=transcript.info["flags"],
        )
        self.on_transcript(transcript)
        try:
            if self.out_dir is not None:
                record.outputs = [str(p) for p in write_outputs(transcript, self.out_dir, state.item.clip_id, self.formats)]
            elif self.stdout is not None and self.formats != ["jsonl"]:
                self.stdout.write(WRITERS[self.formats[0]](transcript))
                self.stdout.flush()
        except OSError as error:
            record.status, record.error_code = "failed", "E_WRITE"
            record.error = (
                f"{self.out_dir}: cannot write {state.item.clip_id}'s outputs ({error.strerror or error}); free space or choose another -o"
            )
        if state.track is not None:  # split the video stage into decoding+cropping and landmarks
            state.stage_seconds["landmarks"] = state.track.detect_seconds
            state.stage_seconds["video"] -= state.track.detect_seconds
        for stage, seconds in state.stage_seconds.items():
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds
        record.seconds = round(time.perf_counter() - state.started, 3)
        self._record(record)

    def _fail(self, state: InputState, error: OmniAVSRError) -> None:
        self.in_flight.pop(state.index, None)
        self.pending = [p for p in self.pending if p[0] is not state]
        self._record(
            RunRecord(
                input=self._source(state.item),
                id=state.item.clip_id,
                status="failed",
                error_code=error.code,
                error=str(error),
                seconds=round(time.perf_counter() - state.started, 3),
            )
        )

    def _record(self, record: RunRecord) -> None:
        self.records.append(record)
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with (self.out_dir / RUN_LOG).open("a", encoding="utf-8") as log:
                log.write(record.to_json() + "\n")
        self.on_record(record)

    def _finished(self, item: InputFile) -> bool:
        return all(output_path(self.out_dir, item.clip_id, fmt).is_file() for fmt in self.formats)

    def _source(self, item: InputFile) -> str:
        return self.sources.get(item.clip_id, str(item.path))

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
                "vad": asdict(options.vad_options) if state.vad else None,
            },
        }


def transcribe(model, inputs: list[str | Path], options: TranscribeOptions = TranscribeOptions()) -> list[Transcript]:
    """The Python entry point: transcripts of media files, in the order given, nothing written.

    A file that fails raises its OmniAVSRError (the CLI instead records it and goes on).
    """
    items = [InputFile(Path(path), str(n)) for n, path in enumerate(inputs)]
    transcripts: dict[str, Transcript] = {}
    records = Pipeline(model, options, ["json"], None, on_transcript=lambda t: transcripts.__setitem__(t.id, t)).run(items)
    for record in records:
        if record.status == "failed":
            raise OmniAVSRError(record.error, code=record.error_code)
    return [transcripts[item.clip_id] for item in items]
