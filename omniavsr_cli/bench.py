"""``omniavsr bench``: where the time goes when transcribing, per stage, for one mode and rate pair.

Stages: probe, audio decoding, VAD, video decoding and cropping, landmarks (all in the worker threads,
overlapping the model), then the encoders, the LLM and the word-timing pass (the model). Each gets seconds and a real-time factor
(media seconds per second); the LLM also tokens per second; the run reports its wall time, overall speed and
peak memory. Without files it generates a talking-face clip (matplotlib's portrait with speech-like audio);
without installed weights it measures a random-weight model of the released size (the speed of random
weights is the speed of real ones; the transcript is noise). ``against_loop`` also decodes the same chunks
one at a time, as the official evaluation does, and checks the tokens agree.
"""

from __future__ import annotations

import math
import os
import resource
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .inputs import InputFile
from .media.ffmpeg import find_ffmpeg
from .model.loading import LoadedModel
from .timebase import FPS, SAMPLE_RATE
from .transcribe import Chunk, ChunkDecoded, InputDone, Pipeline, TranscribeOptions

STAGES = ("probe", "decode_audio", "vad", "video", "landmarks", "encoders", "llm", "words")


@dataclass
class BenchResult:
    media_seconds: float
    chunks: int
    wall_seconds: float
    tokens: int
    stage_seconds: dict[str, float]
    peak_rss_mb: float
    peak_gpu_mb: float | None
    device: str
    loop: dict | None = None  # batched against one at a time: seconds, speedup, equal tokens
    settings: dict = field(default_factory=dict)

    @property
    def real_time_factor(self) -> float:
        return self.media_seconds / self.wall_seconds if self.wall_seconds else math.inf

    def rows(self) -> list[tuple[str, float, float, str]]:
        """(stage, seconds, x real time, note) for the report."""
        rows = []
        for stage in STAGES:
            seconds = self.stage_seconds.get(stage)
            if seconds is None:
                continue
            note = f"{self.tokens / seconds:.1f} tokens/s" if stage == "llm" and seconds else ""
            rows.append((stage, seconds, self.media_seconds / seconds if seconds else math.inf, note))
        rows.append(("total (wall)", self.wall_seconds, self.real_time_factor, f"{self.chunks} chunks, {self.tokens} tokens"))
        return rows


def generated_media(directory: Path, seconds: float = 32.0, size: int = 224) -> Path:
    """A talking-face clip made here: the portrait that ships with matplotlib, moving, with speech-like audio
    (a 5 Hz amplitude-modulated tone, which silero-vad hears as speech, paused every few seconds)."""
    import cv2
    import matplotlib

    image = cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"))
    path = directory / "bench-face.mp4"
    frames = int(seconds * FPS)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    talking = (t % 4.0) < 3.4
    audio = np.where(talking, 0.3 * np.sin(2 * np.pi * 190 * t) * (1 + np.sin(2 * np.pi * 5 * t)), 0.0).astype("<f4")
    pcm = directory / "bench-audio.f32"
    pcm.write_bytes(audio.tobytes())
    command = [
        find_ffmpeg().path,
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "bgr24",
        "-s",
        f"{size}x{size}",
        "-r",
        str(FPS),
        "-i",
        "-",
        "-f",
        "f32le",
        "-ar",
        str(SAMPLE_RATE),
        "-ac",
        "1",
        "-i",
        str(pcm),
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        str(path),
    ]
    with subprocess.Popen(command, stdin=subprocess.PIPE) as ffmpeg:
        for k in range(frames):
            matrix = cv2.getRotationMatrix2D((264, 240), 4 * math.sin(k / 6), size / 300 * (1 + 0.05 * math.sin(k / 9)))
            matrix[:, 2] += (size / 2 - 264 + 6 * math.sin(k / 7), size / 2 - 240)
            ffmpeg.stdin.write(cv2.warpAffine(image, matrix, (size, size), borderMode=cv2.BORDER_REPLICATE).tobytes())
        ffmpeg.stdin.close()
    pcm.unlink()
    return path


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_bench(model: LoadedModel, files: list[Path], options: TranscribeOptions, against_loop: bool = False) -> BenchResult:
    import torch

    on_gpu = model.device.type == "cuda"
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    # With --against-loop the chunks and their tokens are kept for the comparison, and the guards are off
    # (a retry would decode some chunks twice).
    pipeline = Pipeline(model, replace(options, guards=options.guards and not against_loop))
    kept: dict[tuple[int, int], Chunk] = {}
    chunks: list[tuple[Chunk, list[int]]] = []
    done: list[InputDone] = []
    decoded_chunks = 0
    started = time.perf_counter()
    keep = (lambda index, chunk: kept.__setitem__((index, chunk.index), chunk)) if against_loop else None
    for event in pipeline.run([InputFile(path, f"{n}") for n, path in enumerate(files)], on_chunk=keep):
        decoded_chunks += isinstance(event, ChunkDecoded)
        if isinstance(event, ChunkDecoded) and against_loop:
            chunks.append((kept.pop((event.index, event.chunk)), [token for segment in event.segments for token in segment.tokens]))
        elif isinstance(event, InputDone):
            if not event.ok:
                raise event.error
            done.append(event)
    wall = time.perf_counter() - started
    stages = pipeline.timer.seconds
    result = BenchResult(
        media_seconds=sum(d.transcript.info["duration"] for d in done),
        chunks=decoded_chunks,
        wall_seconds=wall,
        tokens=pipeline.tokens_decoded,
        stage_seconds=stages,
        peak_rss_mb=peak_rss_mb(),
        peak_gpu_mb=torch.cuda.max_memory_allocated() / 2**20 if on_gpu else None,
        device=str(model.device),
        settings={
            "mode": options.mode,
            "rates": list(pipeline.rates),
            "beams": options.decoding.num_beams,
            "batch_size": options.batch_size or "auto",
            "guards": pipeline.options.guards,
            "files": len(files),
            "threads": torch.get_num_threads(),
        },
    )
    if against_loop:
        result.loop = _batched_vs_loop(model.module, pipeline, chunks)
    return result


def _batched_vs_loop(model, pipeline: Pipeline, chunks: list[tuple[Chunk, list[int]]]) -> dict:
    """The same chunks decoded in batches (as many as the limits allow) and in the official evaluation's loop
    (one at a time), same settings; both must give the tokens the pipeline gave."""
    import torch

    from .decoding import BatchDecoder, BatchLimits

    decoder = BatchDecoder(model, pipeline.rates, pipeline.options.decoding, BatchLimits(), guards=False)
    by_task: dict[str, list[int]] = {}
    for index, (chunk, _) in enumerate(chunks):
        by_task.setdefault(chunk.task, []).append(index)
    clips = [chunk.clip() for chunk, _ in chunks]
    batched: list[list[int] | None] = [None] * len(chunks)
    started = time.perf_counter()
    for task, indices in by_task.items():
        for index, result in zip(indices, decoder.decode([clips[i] for i in indices], task)):
            batched[index] = result.ids
    batched_seconds = time.perf_counter() - started
    started = time.perf_counter()
    looped = []
    with torch.inference_mode():
        for clip, (chunk, _) in zip(clips, chunks):
            looped += model.generate([clip], chunk.task, pipeline.rates, pipeline.options.decoding)
    loop_seconds = time.perf_counter() - started
    expected = [tokens for _, tokens in chunks]
    return {
        "chunks": len(chunks),
        "loop_seconds": loop_seconds,
        "batched_seconds": batched_seconds,
        "speedup": loop_seconds / batched_seconds if batched_seconds else None,
        "equal_outputs": batched == looped == expected,
    }


def format_report(result: BenchResult) -> str:
    lines = [f"{'stage':<14} {'seconds':>9} {'x real time':>12}  note"]
    for stage, seconds, speed, note in result.rows():
        lines.append(f"{stage:<14} {seconds:>9.2f} {speed:>12.1f}  {note}")
    lines.append(
        f"media {result.media_seconds:.1f} s on {result.device}; peak RSS {result.peak_rss_mb:.0f} MB"
        + (f", peak GPU {result.peak_gpu_mb:.0f} MB" if result.peak_gpu_mb is not None else "")
    )
    if result.loop:
        loop = result.loop
        lines.append(
            f"{loop['chunks']} chunks one at a time (official loop): {loop['loop_seconds']:.2f} s; batched: {loop['batched_seconds']:.2f} s "
            f"({loop['speedup']:.1f}x faster), same tokens: {'yes' if loop['equal_outputs'] else 'NO'}"
        )
    lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in result.settings.items()) + f"; cpu cores {os.cpu_count()}")
    return "\n".join(lines)
