"""Labelled clips for training and evaluation: manifests, loading with checks, frame-budget batches.

Manifests are what ``prep-lips --manifest`` writes (and what the official recipe reads):

- ``.csv``: the Omni-AVSR 5 columns ``dataset, rel_path, frames, <ignored>, text``, no header, read with a
  real CSV parser (the official split on "," breaks on a comma in the text; a quoted field may hold commas and
  line breaks). ``rel_path`` is relative to ``root/dataset``; the audio is the ``.wav`` beside the video. ``root`` defaults to the manifest's
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
import io
import itertools
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
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"frames {frames!r} is not a whole number") from None
    if count <= 0:
        raise ValueError(f"frames {count} is not positive")
    if not isinstance(text, str):
        raise ValueError("text is missing")
    if not text.strip():  # nothing to learn, and a reference every word of a hypothesis would count against
        raise ValueError("the transcript is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Bytes that are not UTF-8 are kept for the paths (read_manifest), never for a reference transcript.
        raise ValueError("text is not UTF-8") from None
    return Example(f"{dataset}/{Path(video).with_suffix('').as_posix()}", video_path, audio_path, count, " ".join(text.split()))


def read_manifest(path: Path, root: Path | None = None) -> Manifest:
    """Every usable line of a .csv or .jsonl manifest; unusable lines are listed in ``skipped``.

    Read as prep-lips writes it: UTF-8, a byte-order mark ignored, and bytes that are not UTF-8 (a file name's)
    kept as surrogates so the path still names the file."""
    path = Path(path)
    root = Path(root) if root is not None else path.resolve().parent.parent
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="surrogateescape")
    except OSError as error:
        raise InputError(
            f"{path}: cannot read this manifest ({error.strerror or error}); give the manifest.csv or manifest.jsonl prep-lips wrote"
        ) from None
    manifest = Manifest([])
    jsonl = path.suffix.lower() == ".jsonl"
    for number, row in _jsonl_rows(text) if jsonl else _csv_rows(text):
        try:
            if isinstance(row, ValueError):
                raise row
            if jsonl:
                example = _example(root, row["dataset"], row["video"], row.get("audio"), row["frames"], row["text"], False)
            elif len(row) != 5:
                raise ValueError(f"{len(row)} columns, expected 5 (dataset, rel_path, frames, ids, text)")
            else:
                example = _example(root, row[0], row[1], None, row[2], row[4], True)
        except (ValueError, KeyError, TypeError) as error:
            manifest.skipped.append((f"{path}:{number}", f"unusable line ({error})"))
        else:
            manifest.examples.append(example)
    if not manifest.examples:
        reason = f"; e.g. {manifest.skipped[0][0]}: {manifest.skipped[0][1]}" if manifest.skipped else ""
        raise InputError(f"{path}: no usable examples in this manifest{reason}")
    return manifest


def _jsonl_rows(text: str):
    """(line number, object or the ValueError that says why the line is not one) of each non-blank line.

    Lines end at "\n" only: a file name may hold other line separators (U+2028), which JSON keeps as they are."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except RecursionError:
            yield number, ValueError("nested too deeply")
        except ValueError as error:
            yield number, error


def _csv_rows(text: str):
    """(line number a record starts on, its fields or the ValueError that says why it cannot be parsed) of each
    record. Quoted fields may span lines; a record that cannot be parsed (a quote never closed would otherwise
    take every line after it) is reported and parsing goes on from the next line."""
    lines = io.StringIO(text, newline="").readlines()
    start = 0
    while start < len(lines):
        reader = csv.reader(itertools.islice(lines, start, None), strict=True)
        consumed = 0
        try:
            for row in reader:
                if row:
                    yield start + consumed + 1, row
                consumed = reader.line_num
            return
        except csv.Error as error:
            unclosed = reader.line_num == len(lines) - start and str(error) == "unexpected end of data"
            yield start + consumed + 1, ValueError("a quote opened on this line is never closed" if unclosed else f"not CSV: {error}")
            start += consumed + 1


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
    return None if path is None else writable_directory(path, "cache")


def writable_directory(path: Path, name: str) -> Path:
    """``path``, the directory the parameter ``name`` gives, made if needed and checked writable, so that a
    run says at once what a later write would fail on."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{parameter(name)} {path}: cannot make this directory ({error.strerror or error}); choose another") from None
    if not os.access(path, os.W_OK):
        raise InputError(f"{parameter(name)} {path}: cannot write there; choose another directory")
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
