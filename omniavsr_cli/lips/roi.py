"""The mouth region of interest: auto_avsr's geometry, which the released Omni-AVSR weights were trained on.

Given one face's 68 iBUG landmarks per 25 fps frame (``None`` where no face was found):

1. fill the gaps: linear interpolation between detections, the first/last detection copied to the ends;
2. smooth: frame ``i`` uses the mean shape of frames ``i-m .. i+m`` with ``m = min(6, i, T-1-i)``, moved
   back onto frame ``i``'s own centroid (smoothing steadies scale and rotation, not position);
3. a similarity transform (rotation, uniform scale, shift; OpenCV's LMedS fit) takes the stable points
   28, 33, 36, 39, 42, 45, 48, 54 of the smoothed shape onto the same points of the reference mean face;
4. the frame is warped into the 256x256 reference frame (bilinear, black border) and a 96x96 window is cut
   around the mean of the transformed lip points 48-67.

Everything is float64 as upstream (float32 landmarks give a slightly different LMedS fit), so the crops are
bit-for-bit reproducible from the same landmarks. The model later takes the centre 88x88 and converts it to
grey; the crops are stored in colour.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import cv2
import numpy as np

REFERENCE_SIZE = 256
CROP_SIZE = 96
SMOOTHING_WINDOW = 12
STABLE_POINTS = (28, 33, 36, 39, 42, 45, 48, 54)
LIP_POINTS = slice(48, 68)
# auto_avsr refuses a frame whose mouth centre lies further than half a crop plus 5 px from the warped
# image's centre; we keep the frame, shift the window back inside that limit and count it (see docs/prep-lips.md).
MAX_CENTRE_OFFSET = CROP_SIZE // 2 + 5


def mean_face() -> np.ndarray:
    """auto_avsr's 20-words mean face: 68 (x, y) points in the 256x256 reference frame, float64."""
    with resources.files(__package__).joinpath("mean_face_68.npy").open("rb") as handle:
        return np.load(handle)


def fill_gaps(points: Sequence[np.ndarray | None]) -> np.ndarray:
    """Per-frame (68, 2) landmarks with the missing frames filled in; needs at least one detection."""
    detected = [i for i, p in enumerate(points) if p is not None]
    if not detected:
        raise ValueError("no frame has landmarks")
    filled = np.empty((len(points), 68, 2), dtype=np.float64)
    for i in detected:
        filled[i] = points[i]
    for start, stop in zip(detected, detected[1:]):
        span = stop - start
        for step in range(1, span):
            filled[start + step] = filled[start] + step / float(span) * (filled[stop] - filled[start])
    filled[: detected[0]] = filled[detected[0]]
    filled[detected[-1] + 1 :] = filled[detected[-1]]
    return filled


def smoothed_shape(points: np.ndarray, index: int) -> np.ndarray:
    """Frame ``index``'s landmarks averaged over its centred window, re-centred on the frame's own centroid."""
    margin = min(SMOOTHING_WINDOW // 2, index, len(points) - 1 - index)
    shape = np.mean([points[j] for j in range(index - margin, index + margin + 1)], axis=0)
    shape += points[index].mean(axis=0) - shape.mean(axis=0)
    return shape


def similarity_to_reference(shape: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The 2x3 similarity matrix taking ``shape``'s stable points onto ``reference``'s (LMedS, as upstream)."""
    source = np.vstack([shape[i] for i in STABLE_POINTS])
    target = np.vstack([reference[i] for i in STABLE_POINTS])
    matrix, _ = cv2.estimateAffinePartial2D(source, target, method=cv2.LMEDS)
    if matrix is None:  # degenerate landmarks (all points on top of each other)
        raise ValueError("the stable landmarks do not define a similarity transform")
    return matrix


@dataclass(frozen=True)
class CropWindow:
    """Where the 96x96 mouth window sits in the warped 256x256 frame."""

    left: int
    top: int
    centre: tuple[float, float]  # the mouth centre before any clamping
    clamped: bool  # the mouth was further than auto_avsr allows and the window was moved back


def crop_window(matrix: np.ndarray, shape: np.ndarray) -> CropWindow:
    lips = shape[LIP_POINTS] @ matrix[:, :2].T + matrix[:, 2]
    centre_x, centre_y = lips.mean(axis=0)
    middle = REFERENCE_SIZE / 2
    limited_x = min(max(centre_x, middle - MAX_CENTRE_OFFSET), middle + MAX_CENTRE_OFFSET)
    limited_y = min(max(centre_y, middle - MAX_CENTRE_OFFSET), middle + MAX_CENTRE_OFFSET)
    half = CROP_SIZE // 2
    # round() is round-half-to-even, as upstream's round() on numpy floats.
    return CropWindow(
        left=int(round(limited_x) - half),
        top=int(round(limited_y) - half),
        centre=(float(centre_x), float(centre_y)),
        clamped=(limited_x, limited_y) != (centre_x, centre_y),
    )


def mouth_crop(frame: np.ndarray, matrix: np.ndarray, window: CropWindow) -> np.ndarray:
    """Warp ``frame`` into the reference frame and cut the 96x96 window (uint8, same channels as ``frame``)."""
    warped = cv2.warpAffine(
        frame,
        matrix,
        (REFERENCE_SIZE, REFERENCE_SIZE),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return warped[window.top : window.top + CROP_SIZE, window.left : window.left + CROP_SIZE]


@dataclass(frozen=True)
class FrameGeometry:
    matrix: np.ndarray  # 2x3, source frame -> reference frame
    window: CropWindow


def frame_geometry(points: np.ndarray, index: int, reference: np.ndarray) -> FrameGeometry:
    """Everything needed to crop frame ``index`` from the gap-filled landmarks of the whole clip."""
    shape = smoothed_shape(points, index)
    matrix = similarity_to_reference(shape, reference)
    return FrameGeometry(matrix, crop_window(matrix, shape))


class StreamingCropper:
    """Crops a clip frame by frame while its landmarks are still being found, holding few frames.

    Frame ``i`` can be cropped once the gap-filled landmarks of frames up to ``i+6`` are known, i.e. once a
    detection at or after ``i+6`` closes any gap before it. Frames wait in a buffer until then. When a long
    stretch without a face would make the buffer exceed ``max_buffered_bytes``, the buffer is dropped and
    :attr:`overflowed` is set: the caller keeps feeding landmarks (frames ``None``) and afterwards crops
    from :attr:`next_index` on over a second decode with :meth:`crop`. The crops are the same either way.
    """

    def __init__(self, max_buffered_bytes: int = 256 * 2**20):
        self.max_buffered_bytes = max_buffered_bytes
        self.reference = mean_face()
        self.raw: list[np.ndarray | None] = []
        self.filled: list[np.ndarray] = []  # gap-filled landmarks of a prefix of the clip
        self.waiting: deque[np.ndarray] = deque()  # frames next_index, next_index+1, ... not cropped yet
        self.next_index = 0
        self.overflowed = False

    def push(self, frame: np.ndarray | None, points: np.ndarray | None) -> list[tuple[int, np.ndarray, FrameGeometry]]:
        """Add the next frame and its landmarks (``None`` where no face); returns the crops now ready."""
        self.raw.append(None if points is None else np.asarray(points, dtype=np.float64))
        self._extend_filled()
        if self.overflowed:
            return []
        self.waiting.append(frame)
        if len(self.waiting) * frame.nbytes > self.max_buffered_bytes:
            self.overflowed = True
            self.waiting.clear()
            return []
        ready = []
        while self.waiting and self.next_index + SMOOTHING_WINDOW // 2 < len(self.filled):
            ready.append(self._crop_next(self.waiting.popleft()))
        return ready

    def finish(self) -> list[tuple[int, np.ndarray, FrameGeometry]]:
        """Crop the frames still waiting (all known now); raises ValueError when no frame had a face."""
        self.filled = list(fill_gaps(self.raw))
        ready = []
        while self.waiting:
            ready.append(self._crop_next(self.waiting.popleft()))
        return ready

    def crop(self, index: int, frame: np.ndarray) -> tuple[int, np.ndarray, FrameGeometry]:
        """Crop frame ``index`` after :meth:`finish` (the second pass of an overflowed clip)."""
        geometry = frame_geometry(self.filled, index, self.reference)
        return index, mouth_crop(frame, geometry.matrix, geometry.window), geometry

    def _crop_next(self, frame: np.ndarray) -> tuple[int, np.ndarray, FrameGeometry]:
        result = self.crop(self.next_index, frame)
        self.next_index += 1
        return result

    def _extend_filled(self) -> None:
        newest = len(self.raw) - 1
        tail = self.raw[newest]
        if tail is None:
            return
        if not self.filled:  # the first detection also stands for the frames before it
            self.filled = [tail] * (newest + 1)
            return
        start = len(self.filled) - 1
        head, span = self.filled[start], newest - start
        self.filled += [head + step / float(span) * (tail - head) for step in range(1, span)] + [tail]


def mouth_rois(frames: Sequence[np.ndarray], points: Sequence[np.ndarray | None]) -> list[np.ndarray]:
    """The 96x96 mouth crops of a whole clip held in memory (long clips go through :class:`StreamingCropper`)."""
    filled = fill_gaps(points)
    reference = mean_face()
    crops = []
    for index, frame in enumerate(frames):
        geometry = frame_geometry(filled, index, reference)
        crops.append(mouth_crop(frame, geometry.matrix, geometry.window))
    return crops
