"""``prep-lips``: media in, the mouth crops (and 16 kHz audio) the model was trained on out.

For each clip, in one streaming pass: 25 fps frames -> landmarks -> one face per frame -> gap filling,
smoothing, warp and crop (roi.py) -> H.264 mp4. Where several faces are seen, the face chosen in each
16-s block is the one whose mouth follows the audio (speakers.py; ``face_select`` auto or speaker). Outputs, mirroring the input tree under OUT::

    <id>.mp4              96x96 colour mouth crops, 25 fps
    <id>.wav              16 kHz mono, sample 640*i starts frame i (absent when the source has no audio)
    <id>.landmarks.npz    points (T, 68, 2), scores (T,), detected (T,), record (this clip's prep.jsonl line)
    <id>.crops.png        with debug_crops: a contact sheet for a person to check
    prep.jsonl            one line per clip: status, frames, face coverage, gaps, faces seen, detector, seconds, error

Every file is written under a ``.part`` name and renamed when complete, the mp4 last, so a clip whose mp4
exists is finished; an interrupted run resumes by skipping those.

The clips are prepared here one at a time, in worker processes (``workers``), or as Ray tasks over a cluster
(``ray``): the outputs are the same, and this process writes prep.jsonl in every case.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import PART, write_text_atomic
from ..errors import OmniAVSRError
from ..inputs import InputFile
from ..media.decode import stream_audio
from ..media.encode import VideoWriter, interrupts_held, write_wav
from ..media.probe import probe
from ..parallel import check_workers, worker_count
from ..timebase import FPS
from ..writers import json_text
from . import roi
from .contact_sheet import ContactSheet
from .synchrony import EnvelopeStream
from .tracking import MouthTrack, check_face_select, longest_run

if TYPE_CHECKING:
    from ..cluster import RayOptions

RECORDS_FILE = "prep.jsonl"


@dataclass(frozen=True)
class PrepOptions:
    detector: str = "mediapipe"
    face_select: str = "auto"  # tracking.RULES
    min_face_coverage: float = 0.5
    debug_crops: bool = False

    def __post_init__(self) -> None:
        check_face_select(self.face_select)


@dataclass
class ClipRecord:
    """One line of prep.jsonl."""

    id: str
    source: str
    status: str  # "ok" or "failed"
    frames: int = 0
    face_coverage: float = 0.0  # fraction of frames where the chosen face was detected
    interpolated_frames: int = 0
    longest_gap: int = 0  # longest run of frames without a face
    faces_seen: int = 0  # most faces in any one frame
    off_centre_frames: int = 0  # frames whose mouth lay beyond auto_avsr's limit (window moved back)
    audio: bool = False
    detector: str = ""
    seconds: float = 0.0
    error: dict | None = None  # {"code": ..., "message": ...}
    skipped: bool = field(default=False, compare=False)  # finished by an earlier run, not written to disk

    def to_json(self) -> str:
        data = asdict(self)
        del data["skipped"]
        return json_text(data)


def output_paths(out_dir: Path, clip_id: str) -> dict[str, Path]:
    stem = out_dir / clip_id
    return {
        "audio": stem.with_name(stem.name + ".wav"),
        "landmarks": stem.with_name(stem.name + ".landmarks.npz"),
        "sheet": stem.with_name(stem.name + ".crops.png"),
        "video": stem.with_name(stem.name + ".mp4"),  # renamed last: its presence marks the clip finished
    }


def _part(path: Path) -> Path:
    return path.with_name(path.name + PART)


def finished_record(out_dir: Path, clip_id: str) -> ClipRecord | None:
    """The record of a clip an earlier run finished, read back from its landmarks file."""
    paths = output_paths(out_dir, clip_id)
    if not (paths["video"].is_file() and paths["landmarks"].is_file()):
        return None
    try:
        with np.load(paths["landmarks"], allow_pickle=False) as data:
            record = ClipRecord(**json.loads(str(data["record"])))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable: prepare it again
    record.skipped = True
    return record


def prepare_clip(item: InputFile, out_dir: Path, options: PrepOptions, describe: Callable[[OmniAVSRError], str] = str) -> ClipRecord:
    """Prepare one clip; failures come back as a record with ``status == "failed"``, never as an exception, its
    message worded by ``describe``."""
    started = time.perf_counter()
    record = ClipRecord(id=item.clip_id, source=str(item.path), status="failed", detector=options.detector)
    paths = output_paths(out_dir, item.clip_id)
    parts = {name: _part(path) for name, path in paths.items()}
    try:
        _prepare(item, options, paths, parts, record, started)
        record.status = "ok"
    except OmniAVSRError as error:
        record.error = {"code": error.code, "message": describe(error)}
    except OSError as error:  # its own outputs (a folder in the way, a full disk): this clip fails, the others go on
        record.error = {
            "code": "E_WRITE",
            "message": f"{paths['video']}: cannot write this clip's outputs ({error.strerror or error}); free space or move what is in the way",
        }
    except Exception as error:  # a bug: this clip fails, the others go on
        record.error = {"code": "E_INTERNAL", "message": f"{item.path}: internal error: {type(error).__name__}: {error}"}
    finally:
        for part in parts.values():
            part.unlink(missing_ok=True)
        record.seconds = round(time.perf_counter() - started, 3)
    return record


def _prepare(
    item: InputFile, options: PrepOptions, paths: dict[str, Path], parts: dict[str, Path], record: ClipRecord, started: float
) -> None:
    info = probe(item.path)
    info.require_video()
    record.audio = info.audio is not None
    paths["video"].parent.mkdir(parents=True, exist_ok=True)
    sheet = ContactSheet(math.ceil((info.duration or 0) * FPS)) if options.debug_crops else None

    def show(index: int, frame: np.ndarray, face) -> None:
        if sheet is not None:
            sheet.add_frame(index, frame, None if face is None else face.points)

    def envelope() -> np.ndarray:  # decoded only when a second face makes synchrony matter (or face_select="speaker")
        stream = EnvelopeStream()
        for block in stream_audio(item.path, info=info):
            stream.feed(block)
        return stream.envelope()

    track = MouthTrack(
        item.path,
        info,
        options.detector,
        options.face_select,
        clip_id=item.clip_id,
        min_face_coverage=options.min_face_coverage,
        on_frame=show,
        envelope=envelope if record.audio else None,
    )
    writer = None
    try:
        with interrupts_held():
            writer = VideoWriter(parts["video"], roi.CROP_SIZE, roi.CROP_SIZE)
        try:
            for index, crop in track.crops():
                writer.write(crop)
                if sheet is not None:
                    sheet.add_crop(index, crop)
        finally:  # the record describes the frames seen, also when the clip fails
            detected = track.detected
            record.frames = track.frames
            record.faces_seen = track.faces_seen
            record.face_coverage = track.face_coverage
            record.interpolated_frames = int((~detected).sum())
            record.longest_gap = longest_run(~detected)
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    record.off_centre_frames = track.off_centre_frames

    filled = np.stack(track.cropper.filled)
    if record.audio:
        write_wav(item.path, parts["audio"])
    with parts["landmarks"].open("wb") as handle:
        np.savez(
            handle,
            points=filled,
            scores=np.array(track.scores, dtype=np.float64),
            detected=detected,
            # The record a resumed run reports for this clip (its time so far; the final renames are instant).
            record=np.array(ClipRecord(**{**asdict(record), "status": "ok", "seconds": round(time.perf_counter() - started, 3)}).to_json()),
        )
    if sheet is not None:
        sheet.save(parts["sheet"])
    for name in ("audio", "landmarks", "sheet", "video"):
        if parts[name].exists():
            os.replace(parts[name], paths[name])


def _compact_records(path: Path, items: list[InputFile], records: dict[str, ClipRecord]) -> None:
    """Rewrite prep.jsonl with one line per clip (this run's inputs first, in order; earlier clips after)."""
    lines: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                lines[json.loads(line)["id"]] = line
            except (ValueError, KeyError, TypeError):
                continue
    ordered = {item.clip_id: records[item.clip_id].to_json() for item in items if item.clip_id in records}
    ordered.update({clip_id: line for clip_id, line in lines.items() if clip_id not in ordered})
    write_text_atomic(path, "".join(line + "\n" for line in ordered.values()))  # a second Ctrl-C leaves the previous one


_worker_options: tuple[Path, PrepOptions, Callable[[OmniAVSRError], str]] | None = None


def _worker_init(out_dir: Path, options: PrepOptions, describe: Callable[[OmniAVSRError], str]) -> None:
    global _worker_options
    _worker_options = (out_dir, options, describe)


def _worker_prepare(item: InputFile) -> ClipRecord:
    return prepare_clip(item, *_worker_options)


def _ray_prepare(batch: dict, out_dir: Path, options: PrepOptions, describe: Callable[[OmniAVSRError], str], cwd: str) -> dict:
    """A Ray task: one clip prepared on whichever node runs it, its record sent back pickled."""
    (index,), item = batch["index"], pickle.loads(batch["item"][0])
    if not item.path.is_absolute():
        os.chdir(cwd)  # a relative input names the file it names where prepare() runs; this worker process is this job's alone
    return {"index": [index], "record": [pickle.dumps(prepare_clip(item, out_dir, options, describe))]}


def _run_on_ray(
    items: list[InputFile], out_dir: Path, options: PrepOptions, ray: RayOptions, describe: Callable[[OmniAVSRError], str]
) -> Iterator[ClipRecord]:
    from ..cluster import connect, cpu_tasks

    if not items:
        return
    connect(ray)
    # Items travel pickled: a path that is not valid UTF-8 is no Arrow string.
    rows = [{"index": n, "item": pickle.dumps(item)} for n, item in enumerate(items)]
    lost = set(range(len(items)))
    for row in cpu_tasks(rows, _ray_prepare, out_dir=out_dir.resolve(), options=options, describe=describe, cwd=os.getcwd()).iter_rows():
        if (index := int(row["index"])) in lost:  # a retried task's record counts once
            lost.remove(index)
            yield pickle.loads(row["record"])
    for item in (items[index] for index in sorted(lost)):
        error = OmniAVSRError(
            f"{item.path}: its Ray task failed or its worker was lost (retries spent); rerun to do it", code="E_WORKER_LOST"
        )
        yield ClipRecord(
            id=item.clip_id,
            source=str(item.path),
            status="failed",
            detector=options.detector,
            error={"code": error.code, "message": describe(error)},
        )


def _run(
    items: list[InputFile],
    out_dir: Path,
    options: PrepOptions,
    workers: int | str,
    describe: Callable[[OmniAVSRError], str],
    ray: RayOptions | None = None,
) -> Iterator[ClipRecord]:
    if ray is not None:
        yield from _run_on_ray(items, out_dir, options, ray, describe)
        return
    workers = worker_count(workers, len(items))
    if workers <= 1:
        for item in items:
            yield prepare_clip(item, out_dir, options, describe)
        return
    # spawn, not fork: the landmark models run native threads that do not survive a fork.
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_worker_init, initargs=(out_dir, options, describe)
    ) as pool:
        pending = iter(items)
        # range first: zip stops on it without pulling (and dropping) one more item from ``pending``.
        running = {pool.submit(_worker_prepare, item) for _, item in zip(range(2 * workers), pending)}
        try:
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                    if (item := next(pending, None)) is not None:
                        running.add(pool.submit(_worker_prepare, item))
        except KeyboardInterrupt:
            # The clips the workers already hold still finish (a worker stops its own clip only if it got the
            # signal too): wait for them and hand on their records, so the log counts every clip on disk.
            pool.shutdown(wait=True, cancel_futures=True)
            for future in running:
                if not future.cancelled() and future.exception() is None:
                    yield future.result()
            raise


def prepare(
    items: list[InputFile],
    out_dir: Path,
    options: PrepOptions = PrepOptions(),
    *,
    workers: int | str = 1,
    ray: RayOptions | None = None,
    skip_existing: bool = True,
    on_record: Callable[[ClipRecord], None] | None = None,
    describe: Callable[[OmniAVSRError], str] = str,
    records_file: str = RECORDS_FILE,
) -> list[ClipRecord]:
    """Prepare every clip; returns their records in input order. prep.jsonl grows as clips finish.

    ``workers`` processes here (``"auto"``: parallel.worker_count), or with ``ray`` Ray tasks of one CPU each on the cluster it names (``workers``
    is then ignored; :func:`omniavsr_cli.cluster.connect` joins it or starts a local one). On Ray, ``out_dir``
    and the inputs must be on a filesystem every node mounts at the same path, and ``describe`` must be
    importable there; a clip no task returned (its worker lost and Ray's retries spent) is failed with
    E_WORKER_LOST, and a rerun does it.

    ``describe`` words a failed clip's error in its record (the command line passes one that names its flags);
    ``records_file`` names the log in ``out_dir`` (each shard of a job array keeps its own)."""
    check_workers(workers)
    out_dir.mkdir(parents=True, exist_ok=True)
    records: dict[str, ClipRecord] = {}
    todo = []
    for item in items:
        record = finished_record(out_dir, item.clip_id) if skip_existing else None
        if record is None:
            todo.append(item)
        else:
            records[item.clip_id] = record
            if on_record:
                on_record(record)
    try:
        with (out_dir / records_file).open("a", encoding="utf-8") as log:
            for record in _run(todo, out_dir, options, workers, describe, ray):
                records[record.id] = record
                log.write(record.to_json() + "\n")
                log.flush()
                if on_record:
                    on_record(record)
    finally:
        _compact_records(out_dir / records_file, items, records)
    return [records[item.clip_id] for item in items if item.clip_id in records]
