"""Which face to crop when a frame shows several: ``largest`` (auto_avsr's rule), ``center`` or ``track``."""

from __future__ import annotations

from .landmarks import Face

RULES = ("largest", "center", "track")
# A tracked face missing for this many frames (2 s) is given up and the largest face taken instead.
TRACK_PATIENCE = 50


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class FaceSelector:
    """Picks one face per frame; for ``track`` it remembers whom it followed."""

    def __init__(self, rule: str, frame_size: tuple[int, int]):
        if rule not in RULES:
            raise ValueError(f"unknown face selection {rule!r}")
        self.rule = rule
        self.frame_centre = (frame_size[0] / 2, frame_size[1] / 2)
        self._followed: Face | None = None
        self._missing_for = 0

    def choose(self, faces: list[Face]) -> Face | None:
        if not faces:
            self._missing_for += 1
            return None
        if self.rule == "largest":
            return max(faces, key=lambda face: face.size)
        if self.rule == "center":
            return min(faces, key=self._distance_to_centre)
        return self._track(faces)

    def _distance_to_centre(self, face: Face) -> float:
        x, y = face.centre
        return (x - self.frame_centre[0]) ** 2 + (y - self.frame_centre[1]) ** 2

    def _track(self, faces: list[Face]) -> Face | None:
        if self._followed is None or self._missing_for >= TRACK_PATIENCE:
            chosen = max(faces, key=lambda face: face.size)
        else:
            chosen = max(faces, key=lambda face: box_iou(face.box, self._followed.box))
            if box_iou(chosen.box, self._followed.box) == 0.0:
                # The followed face is not in this frame (someone else is): a gap, filled by interpolation.
                self._missing_for += 1
                return None
        self._followed, self._missing_for = chosen, 0
        return chosen
