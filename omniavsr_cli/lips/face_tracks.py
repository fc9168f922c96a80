"""Every face of a clip followed over time: per-frame detections -> face tracks with stable ids.

:class:`FaceTracker` is fed each frame's faces in order and gives each one the id of the track it
continues, or a new id. Matching is greedy on a cost of box overlap and centre distance: the cheapest
(track, face) pair first, then the cheapest of the rest. A pair is only allowed when the face is near
where the track was last seen (see :data:`MAX_CENTRE_SHIFT`, :data:`MIN_SIZE_RATIO`); with a handful of
faces so gated, greedy and optimal (Hungarian) assignments agree except in contrived layouts.

A track not seen for more than :data:`MAX_GAP_FRAMES` frames is closed; a face that returns later
starts a new track (re-identifying a person after a long absence needs appearance, which boxes lack).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .face_select import box_iou
from .landmarks import Face

# 1 s at 25 fps. Detectors drop faces for a few frames at a time (blinks of the detector on a turned head,
# motion blur, a hand passing); SyncNet's tracker allows 25 missed frames too. Over 1 s a person may have
# walked off and someone else taken the spot, so a longer absence is a new track.
MAX_GAP_FRAMES = 25
# How far (in face sizes: mean of the track's box width and height) a face may lie from the track's last
# box: 0.5 between consecutive frames, 0.5 more per missed frame, at most 1 however long the gap.
# At 25 fps a talking head moves a few percent of its size per frame; half a face between two frames
# only happens with a cut, and then the track should break.
MAX_CENTRE_SHIFT = 0.5
MAX_CENTRE_SHIFT_AFTER_GAP = 1.0
# Box sizes (width + height) of a track and a face it continues differ by at most this factor.
MIN_SIZE_RATIO = 0.6
# A box lying this much (share of its area) inside a larger one is the same face found twice: FaceMesh returns
# a second, shrunken mesh of one face in some frames (seen in rotated video), and two people's faces never
# overlap that much without the hidden one being out of the detector's sight.
SAME_FACE_INSIDE = 0.8


def distinct_faces(faces: list[Face]) -> list[Face]:
    """``faces`` (in their order) without second detections of one face: a box mostly inside a larger box is dropped."""
    kept: list[int] = []
    for index in sorted(range(len(faces)), key=lambda k: -_area(faces[k].box)):
        if all(_share_inside(faces[index].box, faces[other].box) < SAME_FACE_INSIDE for other in kept):
            kept.append(index)
    return [faces[index] for index in sorted(kept)]


def _area(box: tuple[float, float, float, float]) -> float:
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def _share_inside(box: tuple[float, float, float, float], outer: tuple[float, float, float, float]) -> float:
    """The share of ``box``'s area that lies inside ``outer``."""
    width = min(box[2], outer[2]) - max(box[0], outer[0])
    height = min(box[3], outer[3]) - max(box[1], outer[1])
    area = _area(box)
    return width * height / area if width > 0 and height > 0 and area > 0 else 0.0


@dataclass
class FaceTrack:
    """One face over the frames ``first_frame..last_frame`` (both detected); rows are those frames, in order.

    ``boxes`` (n, 4) left/top/right/bottom, ``points`` (n, 68, 2) iBUG landmarks and ``scores`` (n,) are
    NaN in the frames where the face was not detected (``detected`` False).
    """

    track_id: int
    first_frame: int
    detected: np.ndarray
    boxes: np.ndarray
    points: np.ndarray
    scores: np.ndarray

    @property
    def frames(self) -> np.ndarray:
        """The frame index of every row."""
        return np.arange(self.first_frame, self.first_frame + len(self.detected))

    @property
    def last_frame(self) -> int:
        return self.first_frame + len(self.detected) - 1

    @property
    def detections(self) -> int:
        return int(self.detected.sum())


@dataclass
class _OpenTrack:
    track_id: int
    first_frame: int
    last_seen: int
    last_box: tuple[float, float, float, float]
    seen: dict[int, Face] = field(default_factory=dict)

    def closed(self) -> FaceTrack:
        rows = self.last_seen - self.first_frame + 1
        detected = np.zeros(rows, bool)
        boxes = np.full((rows, 4), np.nan)
        points = np.full((rows, 68, 2), np.nan)
        scores = np.full(rows, np.nan)
        for frame, face in self.seen.items():
            row = frame - self.first_frame
            detected[row] = True
            boxes[row] = face.box
            points[row] = face.points
            scores[row] = face.score
        return FaceTrack(self.track_id, self.first_frame, detected, boxes, points, scores)


def _scale(box: tuple[float, float, float, float]) -> float:
    return max(((box[2] - box[0]) + (box[3] - box[1])) / 2, 1e-6)


def _centre(box: tuple[float, float, float, float]) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


class FaceTracker:
    """Call :meth:`update` once per frame, frame indices increasing; :meth:`tracks` returns every track so far."""

    def __init__(self, max_gap: int = MAX_GAP_FRAMES):
        self.max_gap = max_gap
        self._open: list[_OpenTrack] = []
        self._closed: list[FaceTrack] = []
        self._next_id = 0
        self._last_frame = -1

    def update(self, frame: int, faces: list[Face]) -> list[int]:
        """The track id of each face of ``frame``, in the order of ``faces``."""
        if frame <= self._last_frame:
            raise ValueError(f"frame {frame} after frame {self._last_frame}: frames must be fed in increasing order")
        self._last_frame = frame
        self._close_stale(frame)
        ids = [-1] * len(faces)
        pairs = [(self._cost(track, face, frame), row, column) for row, track in enumerate(self._open) for column, face in enumerate(faces)]
        matched_tracks = set()
        for _, row, column in sorted(pair for pair in pairs if pair[0] is not None):
            if row in matched_tracks or ids[column] >= 0:
                continue
            track = self._open[row]
            track.seen[frame], track.last_seen, track.last_box = faces[column], frame, faces[column].box
            ids[column] = track.track_id
            matched_tracks.add(row)
        for column, face in enumerate(faces):
            if ids[column] < 0:
                track = _OpenTrack(self._next_id, frame, frame, face.box, {frame: face})
                self._open.append(track)
                self._next_id += 1
                ids[column] = track.track_id
        return ids

    @property
    def open_ids(self) -> list[int]:
        """The ids of the tracks still open after the last update."""
        return [track.track_id for track in self._open]

    def tracks(self) -> list[FaceTrack]:
        """Every track, closed and still open, ordered by id."""
        every = self._closed + [track.closed() for track in self._open]
        return sorted(every, key=lambda track: track.track_id)

    def _close_stale(self, frame: int) -> None:
        still_open = []
        for track in self._open:
            if frame - track.last_seen - 1 > self.max_gap:
                self._closed.append(track.closed())
            else:
                still_open.append(track)
        self._open = still_open

    @staticmethod
    def _cost(track: _OpenTrack, face: Face, frame: int) -> float | None:
        """0 (same box) to 2 (no overlap, as far as allowed); None where the gates forbid the pair."""
        scale = _scale(track.last_box)
        size_ratio = _scale(face.box) / scale
        if not MIN_SIZE_RATIO <= size_ratio <= 1 / MIN_SIZE_RATIO:
            return None
        missed = frame - track.last_seen - 1
        allowed = min(MAX_CENTRE_SHIFT * (1 + missed), MAX_CENTRE_SHIFT_AFTER_GAP)
        shift = float(np.linalg.norm(_centre(face.box) - _centre(track.last_box))) / scale
        if shift > allowed:
            return None
        return (1.0 - box_iou(face.box, track.last_box)) + shift / allowed
