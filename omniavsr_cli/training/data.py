"""Labelled clips for training and evaluation: manifests, loading with checks, frame-budget batches.

Manifests are what ``prep-lips --manifest`` writes (and what the official recipe reads):

- ``.csv``: the Omni-AVSR 5 columns ``dataset, rel_path, frames, <ignored>, text``, no header, read with a
  real CSV parser (the official split on "," breaks on a comma in the text). ``rel_path`` is relative to
  ``root/dataset``; the audio is the ``.wav`` beside the video. ``root`` defaults to the manifest's
  grandparent, which fits both ``OUT/manifest.csv`` from prep-lips and the official ``root/labels/x.csv``.
- ``.jsonl``: one object per line with ``dataset``, ``video``, ``audio`` (or null), ``frames``, ``text``.

A bad line or clip (unparseable, missing file, unreadable media, audio and video of different lengths) is
reported and skipped, never a crash in the middle of an epoch.

Decoding a short clip costs tens of milliseconds of container and filter set-up, more than the model's step on
a small model, so ``load_example`` can keep each decoded clip in a cache directory as one uncompressed ``.npz``
and read it back in about a millisecond on every later epoch, stage and run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, OmniAVSRError, parameter
from ..media.decode import load_audio, load_video
from ..timebase import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME

# Audio and video of one clip may differ by this many 40 ms frames (encoders' rounding, a last partial frame).
LENGTH_TOLERANCE_FRAMES = 2
OFFICIAL_BUCKETS = 400


@dataclass(frozen=True)
class Example:
    id: str  # "<dataset>/<rel_path without extension>"
    video: Path
    audio: Path | None
    frames: int  # 25 fps video frames, as the manifest says (used for batching)
    text: str


@dataclass
class Manifest:
    examples: list[Example]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, why)


class BadExample(InputError):
    """One clip that cannot be trained on or evaluated (unreadable, no frames, audio and video of different
    lengths): it is skipped with this reason, never the end of a run."""

    code = "E_BAD_EXAMPLE"


def _example(root: Path, dataset: str, video: str, audio: str | None, frames, text: str, csv_audio: bool) -> Example:
    base = root / dataset
    video_path = base / video
    audio_path = video_path.with_suffix(".wav") if csv_audio else (base / audio if audio else None)
    try:
        count = int(frames)
    except (TypeError, ValueError):
        raise ValueError(f"frames {frames!r} is not a whole number") from None
    if count <= 0:
        raise ValueError(f"frames {count} is not positive")
    if not isinstance(text, str):
        raise ValueError("text is missing")
    return Example(f"{dataset}/{Path(video).with_suffix('').as_posix()}", video_path, audio_path, count, " ".join(text.split()))


def read_manifest(path: Path, root: Path | None = None) -> Manifest:
    """Every usable line of a .csv or .jsonl manifest; unusable lines are listed in ``skipped``."""
    path = Path(path)
    root = Path(root) if root is not None else path.resolve().parent.parent
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            f"{path}: cannot read this manifest ({error.__class__.__name__}); give the manifest.csv or manifest.jsonl prep-lips wrote"
        ) from None
    manifest = Manifest([])
    if path.suffix.lower() == ".jsonl":
        rows = enumerate(text.splitlines(), start=1)
        for number, line in rows:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                manifest.examples.append(_example(root, row["dataset"], row["video"], row.get("audio"), row["frames"], row["text"], False))
            except (ValueError, KeyError, TypeError) as error:
                manifest.skipped.append((f"{path}:{number}", f"unusable line ({error})"))
    else:
        for number, row in enumerate(csv.reader(text.splitlines()), start=1):
            if not row:
                continue
            try:
                if len(row) != 5:
                    raise ValueError(f"{len(row)} columns, expected 5 (dataset, rel_path, frames, ids, text)")
                manifest.examples.append(_example(root, row[0], row[1], None, row[2], row[4], True))
            except ValueError as error:
                manifest.skipped.append((f"{path}:{number}", f"unusable line ({error})"))
    if not manifest.examples:
        reason = f"; e.g. {manifest.skipped[0][0]}: {manifest.skipped[0][1]}" if manifest.skipped else ""
        raise InputError(f"{path}: no usable examples in this manifest{reason}")
    return manifest


def check_files(manifest: Manifest) -> Manifest:
    """Move examples whose files are missing to ``skipped`` (cheap; done once before training starts)."""
    kept = []
    for example in manifest.examples:
        missing = [p for p in (example.video, example.audio) if p is not None and not p.is_file()]
        if missing:
            manifest.skipped.append((example.id, f"missing file {missing[0]}"))
        else:
            kept.append(example)
    manifest.examples = kept
    return manifest


def load_example(example: Example, cache: Path | None = None) -> tuple[np.ndarray | None, np.ndarray]:
    """(16 kHz float32 audio or None, (T, 96, 96, 3) uint8 mouth crops); BadExample says what is wrong.

    With ``cache``, a clip decoded once is read back from there; the key holds each file's path, size and
    modification time, so a clip prepared again is decoded again."""
    cached = None
    if cache is not None:
        try:
            cached = cache / f"{_cache_key(example)}.npz"
        except OSError:
            pass  # a file gone since the manifest was checked: decoding reports it as a bad example
    if cached is not None and cached.is_file():
        try:
            with np.load(cached) as stored:
                return (stored["audio"] if "audio" in stored.files else None), stored["video"]
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # unreadable (a full disk when it was written): decode again and replace it
    try:
        video = load_video(example.video)
        audio = load_audio(example.audio) if example.audio is not None else None
    except OmniAVSRError as error:
        raise BadExample(f"{example.id}: {error}") from None
    if not len(video):
        raise BadExample(f"{example.id}: {example.video} has no frames")
    if audio is not None and abs(len(audio) / SAMPLES_PER_FRAME - len(video)) > LENGTH_TOLERANCE_FRAMES:
        raise BadExample(
            f"{example.id}: audio lasts {len(audio) / SAMPLE_RATE:.2f} s but the video {len(video) / FPS:.2f} s; prepare the clip again with prep-lips"
        )
    if cached is not None:
        _store(cached, video=video, **({"audio": audio} if audio is not None else {}))
    return audio, video


def clip_cache(path: Path | None) -> Path | None:
    """The cache directory ``load_example`` is given, made if needed; checked now rather than found
    unwritable by a slow run."""
    if path is None:
        return None
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{parameter('cache')} {path}: cannot make this directory ({error.strerror or error}); choose another") from None
    if not os.access(path, os.W_OK):
        raise InputError(f"{parameter('cache')} {path}: cannot write there; choose another directory")
    return path


def _cache_key(example: Example) -> str:
    parts = []
    for path in (example.video, example.audio):
        if path is None:
            parts.append("-")
        else:
            stat = path.stat()
            parts.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def _store(path: Path, **arrays: np.ndarray) -> None:
    """Written beside and renamed into place, so loader workers and concurrent runs never read half a file."""
    partial = path.with_name(f".{path.stem}.{os.getpid()}.npz")
    try:
        np.savez(partial, **arrays)
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)  # a full cache disk slows training down but must not stop it


def frame_batches(lengths: list[int], max_frames: int, buckets: int = OFFICIAL_BUCKETS) -> list[list[int]]:
    """The official batching: lengths into ``buckets`` equal-width buckets, sorted longest first and then
    stably by bucket, packed greedily until the summed frames would pass ``max_frames``."""
    if not lengths:
        return []
    too_long = [i for i, length in enumerate(lengths) if length > max_frames]
    if too_long:
        raise InputError(
            f"{len(too_long)} clips are longer than the batch budget of {max_frames} frames (longest {max(lengths)}); raise {parameter('max_frames')}"
        )
    values = np.asarray(lengths)
    edges = np.linspace(values.min(), values.max(), buckets)
    bucket = np.searchsorted(edges, values, side="left")  # torch.bucketize(right=False)
    longest_first = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    order = sorted(longest_first, key=lambda i: bucket[i])
    batches, current, total = [], [], 0
    for index in order:
        if current and total + lengths[index] > max_frames:
            batches.append(current)
            current, total = [], 0
        current.append(index)
        total += lengths[index]
    if current:
        batches.append(current)
    return batches


def epoch_order(batches: list[list[int]], epoch: int, seed: int) -> list[list[int]]:
    """The batches of one epoch in a shuffled order that depends only on (seed, epoch), so a resumed run
    sees the data in the same order as an uninterrupted one."""
    order = list(batches)
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return order
