"""Face-landmark backends. Each returns, per RGB frame, every face it sees as 68 iBUG points plus a score.

Backends (docs/prep-lips.md has the measurements behind the choice):

- ``mediapipe`` (default): the legacy FaceMesh of mediapipe 0.10.21, whose wheel carries its models, so it
  runs offline on a fresh machine. Its 468 vertices are mapped to the 68 iBUG points with the table below.
- ``dlib``: HOG face detector + the 68-point shape predictor (the ``dlib`` extra); iBUG-68 natively.
- ``face-alignment``: S3FD + 2DFAN-4, the landmark family of the official preprocessing. Its weights must
  already sit in torch's hub cache; GPU recommended (about 2 s per frame on a 2-core CPU).
- ``landmarks:PATH``: precomputed landmarks (see :mod:`.precomputed`), no detection at all.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelUnavailable

# FaceMesh vertex for each iBUG-68 point, 0-based (lip-roi.md §4): jaw 0-16, brows 17-26, nose 27-35,
# eyes 36-47, outer lip 48-59, inner lip 60-67. "Right" is the subject's right (image left), as in dlib.
FACEMESH_TO_IBUG68 = np.array(
    [
        127,
        234,
        93,
        132,
        58,
        136,
        150,
        176,
        152,
        400,
        379,
        365,
        288,
        361,
        323,
        454,
        356,
        70,
        63,
        105,
        66,
        107,
        336,
        296,
        334,
        293,
        300,
        168,
        197,
        5,
        4,
        75,
        97,
        2,
        326,
        305,
        33,
        160,
        158,
        133,
        153,
        144,
        362,
        385,
        387,
        263,
        373,
        380,
        61,
        39,
        37,
        0,
        267,
        269,
        291,
        405,
        314,
        17,
        84,
        181,
        78,
        82,
        13,
        312,
        308,
        317,
        14,
        87,
    ]
)

PRECOMPUTED_PREFIX = "landmarks:"


class BackendUnavailable(ModelUnavailable):
    """A landmark backend that is not installed or lacks its weights."""

    code = "E_BACKEND"


@dataclass(frozen=True)
class Face:
    points: np.ndarray  # (68, 2) float64 pixel coordinates, iBUG order
    score: float  # the detector's confidence; NaN where the backend gives none
    box: tuple[float, float, float, float]  # left, top, right, bottom

    @property
    def size(self) -> float:
        """auto_avsr's "largest face" measure: box width + height."""
        return (self.box[2] - self.box[0]) + (self.box[3] - self.box[1])

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


def box_of(points: np.ndarray) -> tuple[float, float, float, float]:
    left, top = points.min(axis=0)
    right, bottom = points.max(axis=0)
    return float(left), float(top), float(right), float(bottom)


class LandmarkDetector:
    """One clip's detector: ``detect`` is called once per 25 fps frame, in order."""

    name = "base"

    def detect(self, frame: np.ndarray, index: int) -> list[Face]:
        raise NotImplementedError

    def check_frame_count(self, frames: int) -> None:
        """Raise if the clip turned out not to fit this detector (only precomputed landmarks can mismatch)."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class _NativeStderrSilenced:
    """mediapipe's C++ side logs start-up chatter straight to fd 2, from its own threads, at any time.

    While a FaceMesh is open, fd 2 points at /dev/null and Python's ``sys.stderr`` (progress bars, warnings)
    writes to a copy of the real stderr, so only native chatter disappears.
    """

    def __init__(self):
        sys.stderr.flush()
        self._saved_fd = os.dup(2)
        self._saved_stream = sys.stderr
        sys.stderr = open(os.dup(self._saved_fd), "w", buffering=1, encoding=self._saved_stream.encoding, errors="backslashreplace")
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)

    def restore(self) -> None:
        if self._saved_fd < 0:
            return
        sys.stderr.flush()
        os.dup2(self._saved_fd, 2)
        os.close(self._saved_fd)
        sys.stderr.close()
        sys.stderr, self._saved_fd = self._saved_stream, -1


class MediaPipeFaceMesh(LandmarkDetector):
    name = "mediapipe"
    # Up to 4 faces so that --face-select has a choice; a single-face mesh follows whichever face it
    # locked on first, not the largest.
    max_faces = 4
    # FaceMesh runs its face detector on every frame while it tracks fewer faces than it may, which is a third of
    # its time with one face in view (3.5 against 2.3 ms per frame on a 2-core CPU, docs/benchmarks.md). So a lone
    # face is tracked by a one-face mesh, and every SCAN_FRAMES frames (0.2 s) the detector alone (1.5 ms) counts
    # the faces; from the first scan that sees several, the four-face mesh tracks every frame to the clip's end.
    # A lone face's landmarks are the same from either mesh; a second face is found up to 0.2 s later than before.
    SCAN_FRAMES = 5

    def __init__(self):
        if importlib.util.find_spec("mediapipe") is None:
            raise BackendUnavailable(
                "the mediapipe landmark backend is not installed; run: pip install --no-deps mediapipe==0.10.21 (docs/install.md)"
            )
        self._silenced = _NativeStderrSilenced()
        self._lone = self._counter = self._several = None
        self._frames = 0  # frames seen: the scans go by them, whatever indices the caller gives
        try:
            from mediapipe.python.solutions import face_detection, face_mesh

            self._face_mesh = face_mesh
            self._lone = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False)
            # FaceMesh's own detector: the short-range BlazeFace model with the same 0.5 threshold
            self._counter = face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
        except BaseException:  # Ctrl-C between the two: the first graph is closed while its chatter is still muted
            self.close()
            raise

    def detect(self, frame: np.ndarray, index: int) -> list[Face]:
        height, width = frame.shape[:2]
        frame = np.ascontiguousarray(frame)
        scan = self._frames % self.SCAN_FRAMES == 0
        self._frames += 1
        if self._several is None and scan and len(self._counter.process(frame).detections or ()) > 1:
            self._several = self._face_mesh.FaceMesh(static_image_mode=False, max_num_faces=self.max_faces, refine_landmarks=False)
        result = (self._several or self._lone).process(frame)
        faces = []
        for mesh in result.multi_face_landmarks or ():
            vertices = mesh.landmark
            points = np.array([(vertices[i].x, vertices[i].y) for i in FACEMESH_TO_IBUG68], dtype=np.float64)
            points *= (width, height)
            # FaceMesh exposes no per-face confidence; its detection/tracking thresholds (0.5) gate the faces.
            faces.append(Face(points, math.nan, box_of(points)))
        return faces

    def close(self) -> None:
        try:
            for solution in (self._lone, self._counter, self._several):
                if solution is not None:
                    solution.close()
        finally:
            self._silenced.restore()


def dlib_predictor_path() -> Path | None:
    """The 68-point shape predictor: $OMNIAVSR_DLIB_PREDICTOR, face-recognition-models, or Debian's libdlib-data."""
    candidates = []
    if configured := os.environ.get("OMNIAVSR_DLIB_PREDICTOR"):
        candidates.append(Path(configured))
    # face_recognition_models imports pkg_resources, which recent setuptools no longer has: locate, don't import.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(spec.submodule_search_locations[0]) / "models" / "shape_predictor_68_face_landmarks.dat")
    candidates.append(Path("/usr/share/dlib/shape_predictor_68_face_landmarks.dat"))
    return next((path for path in candidates if path.is_file()), None)


class DlibLandmarks(LandmarkDetector):
    name = "dlib"

    def __init__(self):
        if importlib.util.find_spec("dlib") is None:
            raise BackendUnavailable("the dlib landmark backend is not installed; run: pip install 'omniavsr[dlib]'")
        predictor = dlib_predictor_path()
        if predictor is None:
            raise BackendUnavailable(
                "dlib's 68-point shape predictor was not found; pip install face-recognition-models==0.3.0, "
                "or set OMNIAVSR_DLIB_PREDICTOR to shape_predictor_68_face_landmarks.dat"
            )
        import cv2
        import dlib

        self._grey = lambda frame: cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(predictor))

    def detect(self, frame: np.ndarray, index: int) -> list[Face]:
        grey = self._grey(frame)
        # No upsampling: 2.7x faster and enough for faces of 80 px and more (lip-roi.md §3).
        boxes, scores, _ = self._detector.run(grey, 0, 0)
        faces = []
        for box, score in zip(boxes, scores):
            shape = self._predictor(grey, box)
            points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float64)
            faces.append(Face(points, float(score), (box.left(), box.top(), box.right(), box.bottom())))
        return faces


FAN_FILES = ("s3fd-619a316812.pth", "2DFAN4-11f355bf06.pth.tar")


class FaceAlignmentFAN(LandmarkDetector):
    name = "face-alignment"

    def __init__(self):
        if importlib.util.find_spec("face_alignment") is None:
            raise BackendUnavailable(
                "the face-alignment landmark backend is not installed; run: pip install --no-deps face-alignment==1.5.0 "
                "scikit-image numba (docs/prep-lips.md)"
            )
        import torch

        checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
        missing = [name for name in FAN_FILES if not (checkpoints / name).is_file()]
        if missing:
            raise BackendUnavailable(
                f"face-alignment weights are missing from {checkpoints}: {', '.join(missing)}; "
                "copy them there from a machine with internet access (docs/prep-lips.md)"
            )
        import face_alignment

        device = "cuda" if torch.cuda.is_available() else "cpu"
        self._model = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device=device, flip_input=False, compile=False)

    def detect(self, frame: np.ndarray, index: int) -> list[Face]:
        points, scores, boxes = self._model.get_landmarks_from_image(frame, return_bboxes=True, return_landmark_score=True)
        faces = []
        for face_points, face_scores, box in zip(points or (), scores or (), boxes or ()):
            faces.append(Face(np.asarray(face_points[:, :2], dtype=np.float64), float(np.mean(face_scores)), tuple(map(float, box[:4]))))
        return faces
