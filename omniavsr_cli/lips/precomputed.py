"""``--detector landmarks:PATH``: per-frame landmarks computed elsewhere, so existing datasets need no re-detection.

Two formats, one entry per 25 fps frame:

- auto_avsr's ``.pkl``: a pickled list holding a (68, 2) array or ``None`` per frame (its LRS3/VoxCeleb2
  landmark releases). Unpickling is restricted to lists, tuples and numpy arrays, so a hostile file cannot run code.
- our ``.landmarks.npz`` (what ``prep-lips`` writes): ``points`` (T, 68, 2), ``detected`` (T,) and ``scores`` (T,).

PATH is one file (one input clip) or a directory mirroring the inputs: ``DIR/<id>.landmarks.npz``,
``DIR/<id>.npz`` or ``DIR/<id>.pkl``.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np

from ..errors import InputError
from .landmarks import Face, LandmarkDetector, box_of

# A few frames of slack: tools disagree by a frame or two on where a 25 fps stream ends.
FRAME_COUNT_TOLERANCE = 2
# Pixel coordinates beyond this are no frame's (video is at most some thousands of pixels wide); the crop's
# similarity transform cannot be fitted to them.
MAX_COORDINATE = 1e5


class LandmarksFileError(InputError):
    """A precomputed landmarks file that is missing, unreadable or does not fit its clip."""

    code = "E_LANDMARKS"


class _ArraysOnly(pickle.Unpickler):
    allowed = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_pickle(path: Path) -> list[np.ndarray | None]:
    with path.open("rb") as handle:
        frames = _ArraysOnly(handle).load()
    if not isinstance(frames, (list, tuple)):
        raise LandmarksFileError(f"{path}: expected a list of per-frame landmarks, found {type(frames).__name__}")
    points = []
    for index, frame in enumerate(frames):
        if frame is None:
            points.append(None)
            continue
        array = np.asarray(frame, dtype=np.float64)
        if array.size != 136:
            raise LandmarksFileError(f"{path}: frame {index} has landmarks of shape {array.shape}, expected (68, 2)")
        points.append(array.reshape(68, 2))
    return _checked(path, points)


def _read_npz(path: Path) -> tuple[list[np.ndarray | None], np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        if "points" not in data or "detected" not in data:
            raise LandmarksFileError(f"{path}: needs arrays 'points' (T, 68, 2) and 'detected' (T,)")
        points, detected = data["points"].astype(np.float64), data["detected"].astype(bool)
        scores = data["scores"].astype(np.float64) if "scores" in data else np.full(len(points), math.nan)
    if points.ndim != 3 or points.shape[1:] != (68, 2) or detected.shape != (len(points),) or scores.shape != (len(points),):
        raise LandmarksFileError(
            f"{path}: 'points' is {points.shape}, 'detected' {detected.shape} and 'scores' {scores.shape}; "
            "expected (T, 68, 2), (T,) and (T,)"
        )
    return _checked(path, [p if found else None for p, found in zip(points, detected)]), scores


def _checked(path: Path, points: list[np.ndarray | None]) -> list[np.ndarray | None]:
    """``points``, once every detected frame's coordinates are finite and within :data:`MAX_COORDINATE` pixels."""
    for index, frame in enumerate(points):
        if frame is not None and not (np.isfinite(frame).all() and np.abs(frame).max() < MAX_COORDINATE):
            raise LandmarksFileError(
                f"{path}: frame {index} has landmarks that are not pixel coordinates (NaN, infinite or beyond "
                f"{MAX_COORDINATE:.0e}); mark frames without a face as not detected instead"
            )
    return points


def find_landmarks_file(root: Path, clip_id: str | None) -> Path:
    if root.is_file():
        return root
    if clip_id is not None:
        for suffix in (".landmarks.npz", ".npz", ".pkl"):
            candidate = root / f"{clip_id}{suffix}"
            if candidate.is_file():
                return candidate
    raise LandmarksFileError(f"{root}: no {clip_id}.landmarks.npz, .npz or .pkl for this clip", code="E_NO_LANDMARKS")


class PrecomputedLandmarks(LandmarkDetector):
    name = "landmarks"

    def __init__(self, path: Path):
        self.path = path
        try:
            if path.suffix == ".pkl":
                self.points, self.scores = _read_pickle(path), None
            else:
                self.points, self.scores = _read_npz(path)
        except (pickle.UnpicklingError, EOFError, ValueError, OSError) as error:
            raise LandmarksFileError(f"{path}: not a readable landmarks file ({error})") from None

    @classmethod
    def for_clip(cls, root: Path, clip_id: str | None) -> PrecomputedLandmarks:
        return cls(find_landmarks_file(root, clip_id))

    def detect(self, frame: np.ndarray, index: int) -> list[Face]:
        if index >= len(self.points) or self.points[index] is None:
            return []
        points = self.points[index]
        score = math.nan if self.scores is None else float(self.scores[index])
        return [Face(points, score, box_of(points))]

    def check_frame_count(self, frames: int) -> None:
        if abs(frames - len(self.points)) > FRAME_COUNT_TOLERANCE:
            raise LandmarksFileError(
                f"{self.path}: has landmarks for {len(self.points)} frames but the video has {frames} at 25 fps; "
                "were they computed on another version of the video?",
                code="E_LANDMARKS_MISMATCH",
            )
