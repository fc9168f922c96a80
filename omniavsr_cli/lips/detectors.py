"""Choosing a landmark detector by name: a backend of landmarks.py, or landmarks:PATH for precomputed ones
(precomputed.py). Above both, so neither imports the other."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError, UsageError, parameter
from .landmarks import PRECOMPUTED_PREFIX, DlibLandmarks, FaceAlignmentFAN, LandmarkDetector, MediaPipeFaceMesh
from .precomputed import PrecomputedLandmarks

BACKENDS = {"mediapipe": MediaPipeFaceMesh, "dlib": DlibLandmarks, "face-alignment": FaceAlignmentFAN}


def check_backend(spec: str, clips: int = 1) -> None:
    """Fail early, once, with the backend's own message, before any of ``clips`` clips is touched."""
    if spec.startswith(PRECOMPUTED_PREFIX):
        path = Path(spec[len(PRECOMPUTED_PREFIX) :])
        if not path.exists():
            raise InputError(
                f"{path}: no such landmarks file or directory; check {parameter('detector')} landmarks:PATH", code="E_NOT_FOUND"
            )
        if path.is_file() and clips > 1:  # a file holds one clip's frames: every other clip would fail on its length
            raise InputError(f"{spec}: one landmarks file for {clips} clips; give a directory with <id>.landmarks.npz or <id>.pkl per clip")
        return
    open_detector(spec).close()


def open_detector(spec: str, clip_id: str | None = None) -> LandmarkDetector:
    """A fresh detector for one clip (trackers must not carry one clip's faces into the next)."""
    if spec.startswith(PRECOMPUTED_PREFIX):
        return PrecomputedLandmarks.for_clip(Path(spec[len(PRECOMPUTED_PREFIX) :]), clip_id)
    if spec not in BACKENDS:
        raise UsageError(f"unknown landmark backend {spec!r}; choose one of {', '.join(BACKENDS)} or landmarks:PATH")
    return BACKENDS[spec]()
