"""A talking face: a real portrait whose mouth is redrawn every frame from the phonemes being spoken.

The portrait is the one matplotlib ships (so nothing is downloaded). Its 68 landmarks are found once with
the same FaceMesh backend prep-lips uses; the original lips are painted out (OpenCV inpainting), and each
frame draws lips, mouth cavity and teeth from three viseme parameters: how open, how spread and how rounded.
Every phoneme sets a target for them; the targets are smoothed over time (coarticulation) and averaged over
each 40 ms frame. The head drifts, nods and zooms a little, differently in every clip, and the frame's 68
landmarks (lips included, from the drawn shape) are returned with it, so prep-lips can use them
(``--detector landmarks:DIR``) instead of detecting them again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from ..timebase import FPS

REST = (0.04, 0.5, 0.0)  # (open, spread, round): lips together, relaxed
_VOWELS = {
    "i": (0.25, 0.9, 0.0),
    "ɪ": (0.3, 0.75, 0.0),
    "e": (0.45, 0.75, 0.0),
    "ɛ": (0.5, 0.7, 0.0),
    "æ": (0.7, 0.7, 0.0),
    "a": (0.85, 0.55, 0.0),
    "ɑ": (0.85, 0.45, 0.1),
    "ɒ": (0.7, 0.3, 0.5),
    "ɔ": (0.6, 0.2, 0.7),
    "o": (0.45, 0.15, 0.85),
    "ʊ": (0.3, 0.2, 0.8),
    "u": (0.2, 0.1, 1.0),
    "ʉ": (0.22, 0.3, 0.8),
    "ʌ": (0.55, 0.5, 0.0),
    "ə": (0.4, 0.5, 0.0),
    "ɜ": (0.4, 0.5, 0.2),
    "ɚ": (0.35, 0.45, 0.3),
    "ɐ": (0.6, 0.5, 0.0),
    "y": (0.2, 0.2, 0.9),
}
_CONSONANTS = {
    **dict.fromkeys("pbm", (0.0, 0.5, 0.0)),
    **dict.fromkeys("fv", (0.08, 0.55, 0.0)),
    **dict.fromkeys("θð", (0.2, 0.55, 0.0)),
    **dict.fromkeys("tdnlɾɬ", (0.2, 0.6, 0.0)),
    **dict.fromkeys("sz", (0.12, 0.65, 0.0)),
    **dict.fromkeys("ʃʒ", (0.15, 0.3, 0.7)),
    **dict.fromkeys("ɹr", (0.25, 0.35, 0.5)),
    **dict.fromkeys("kgŋxɡ", (0.35, 0.5, 0.0)),
    "h": (0.45, 0.5, 0.0),
    "j": (0.2, 0.75, 0.0),
    **dict.fromkeys("wʍ", (0.1, 0.05, 1.0)),
}
_AFFRICATES = {"tʃ": (0.15, 0.3, 0.7), "dʒ": (0.15, 0.3, 0.7)}
COARTICULATION_S = 0.025  # the standard deviation of the smoothing of the viseme targets


def viseme(phoneme: str) -> tuple[float, float, float]:
    """(open, spread, round) of an espeak-ng IPA phoneme; a diphthong starts from its first vowel."""
    if phoneme in _AFFRICATES:
        return _AFFRICATES[phoneme]
    first = phoneme[:1]
    return _VOWELS.get(first) or _CONSONANTS.get(first) or REST


def mouth_track(phonemes: list[tuple[float, str]], frames: int, start: float = 0.0) -> np.ndarray:
    """(frames, 3) viseme parameters per 25 fps frame; phoneme times are shifted by ``start`` seconds."""
    step, per_frame = 0.001, 40  # 1 ms resolution, 40 ms frames
    times = np.arange(frames * per_frame) * step
    targets = np.tile(np.array(REST), (len(times), 1))
    for (onset, phoneme), following in zip(phonemes, [*phonemes[1:], (math.inf, "")]):
        begin, end = np.searchsorted(times, [onset + start, following[0] + start])
        targets[begin:end] = viseme(phoneme)
    radius = int(4 * COARTICULATION_S / step)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) * step / COARTICULATION_S) ** 2)
    padded = np.pad(targets, ((radius, radius), (0, 0)), mode="edge")
    smooth = np.stack([np.convolve(padded[:, k], kernel / kernel.sum(), mode="valid") for k in range(3)], axis=1)
    return smooth.reshape(frames, per_frame, 3).mean(axis=1)


@dataclass(frozen=True)
class Pose:
    """One clip's head motion: where the face sits in the frame and how it moves (radians, pixels, scale)."""

    shift: tuple[float, float]
    scale: float
    angle: float
    sway: float  # amplitude of the slow drift, pixels
    phase: float
    brightness: float
    contrast: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Pose:
        return cls(
            shift=(float(rng.uniform(-10, 10)), float(rng.uniform(-8, 8))),
            scale=float(rng.uniform(0.9, 1.1)),
            angle=float(rng.uniform(-0.08, 0.08)),
            sway=float(rng.uniform(0, 5)),
            phase=float(rng.uniform(0, 2 * math.pi)),
            brightness=float(rng.uniform(-20, 20)),
            contrast=float(rng.uniform(0.85, 1.15)),
        )


class TalkingFace:
    """Renders frames of a portrait (:func:`portrait_variant`) with a given mouth shape, in a ``size`` x ``size`` video."""

    def __init__(self, landmarks: np.ndarray, size: int = 224, variant: int = 0):
        self.size = size
        self.landmarks = landmarks.astype(np.float64)
        image = portrait_variant(variant)
        lips = self.landmarks[48:60].astype(np.int32)
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [lips], 255)
        ring = mask.copy()
        cv2.fillPoly(ring, [self.landmarks[60:68].astype(np.int32)], 0)
        self.lip_colour = np.array(cv2.mean(image, mask=ring)[:3]) * (0.85, 0.6, 0.62)  # redder than the worn original
        self.blank = cv2.inpaint(image, cv2.dilate(mask, np.ones((9, 9), np.uint8)), 9, cv2.INPAINT_TELEA)
        left, right = self.landmarks[48], self.landmarks[54]
        self.centre = (left + right) / 2
        self.half_width = float(np.linalg.norm(right - left) / 2)
        self.tilt = math.atan2(right[1] - left[1], right[0] - left[0])
        self.face_centre = self.landmarks[[36, 45, 33, 8]].mean(axis=0)
        self.face_height = float(np.linalg.norm(self.landmarks[8] - self.landmarks[27]))

    def lips(self, open_: float, spread: float, round_: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Outer contour (24 points), inner contour (24 points) and the 20 lip landmarks, in portrait pixels."""
        w = self.half_width * (0.82 + 0.3 * spread - 0.3 * round_)
        inner_w = w * (0.88 - 0.4 * round_)
        gap = open_ * 0.85 * self.half_width
        upper, lower = 0.2 * self.half_width * (1 + 0.4 * round_), 0.27 * self.half_width * (1 + 0.4 * round_)

        def contour(x: np.ndarray, width: float, height: float, sign: float) -> np.ndarray:
            profile = np.clip(1 - (x / width) ** 2, 0, None) ** 0.6
            return np.stack([x, sign * height * profile], axis=1)

        xs = np.linspace(-w, w, 13)
        outer = np.vstack([contour(xs, w, gap / 2 + upper, -1), contour(xs[::-1], w, gap / 2 + lower, 1)[1:-1]])
        inner_xs = np.linspace(-inner_w, inner_w, 13)
        inner = np.vstack([contour(inner_xs, inner_w, gap / 2, -1), contour(inner_xs[::-1], inner_w, gap / 2, 1)[1:-1]])
        marks = np.vstack(
            [
                contour(np.linspace(-w, w, 7), w, gap / 2 + upper, -1),  # 48-54
                contour(np.linspace(w, -w, 7)[1:-1], w, gap / 2 + lower, 1),  # 55-59
                contour(np.linspace(-inner_w, inner_w, 5), inner_w, gap / 2, -1),  # 60-64
                contour(np.linspace(inner_w, -inner_w, 5)[1:-1], inner_w, gap / 2, 1),  # 65-67
            ]
        )
        rotation = np.array([[math.cos(self.tilt), -math.sin(self.tilt)], [math.sin(self.tilt), math.cos(self.tilt)]])
        return tuple(points @ rotation.T + self.centre for points in (outer, inner, marks))

    def frame_matrix(self, pose: Pose, index: int) -> np.ndarray:
        """2x3 matrix from portrait pixels to the frame's."""
        t = index / FPS
        scale = pose.scale * 0.4 * self.size / self.face_height * (1 + 0.03 * math.sin(1.3 * t + pose.phase))
        angle = pose.angle + 0.03 * math.sin(0.9 * t + 2 * pose.phase)
        rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        target = np.array(
            [
                self.size / 2 + pose.shift[0] + pose.sway * math.sin(0.7 * t + pose.phase),
                self.size / 2 + pose.shift[1] + pose.sway * math.cos(0.5 * t + pose.phase),
            ]
        )
        return np.hstack([rotation, (target - rotation @ self.face_centre)[:, None]])

    def render(self, track: np.ndarray, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
        """Frames (T, size, size, 3) RGB uint8 and their landmarks (T, 68, 2) for viseme parameters (T, 3)."""
        frames = np.empty((len(track), self.size, self.size, 3), np.uint8)
        points = np.empty((len(track), 68, 2))
        x0, y0 = (self.centre - 2.2 * self.half_width).astype(int)
        x1, y1 = (self.centre + 2.2 * self.half_width).astype(int)
        for index, (open_, spread, round_) in enumerate(track):
            outer, inner, marks = self.lips(open_, spread, round_)
            canvas = self.blank.copy()
            patch = canvas[y0:y1, x0:x1]
            shift = np.array([x0, y0])
            fixed = lambda p, shift=shift: np.round((p - shift) * 16).astype(np.int32)  # noqa: E731 (4 bits of sub-pixel precision)
            cv2.fillPoly(patch, [fixed(outer)], self.lip_colour.tolist(), cv2.LINE_AA, 4)
            if open_ > 0.06:
                cavity = np.zeros(patch.shape[:2], np.uint8)
                cv2.fillPoly(cavity, [fixed(inner)], 255, cv2.LINE_AA, 4)
                top = inner[:, 1].min() - y0
                rows = np.arange(patch.shape[0])[:, None]
                height = max(inner[:, 1].max() - y0 - top, 1.0)
                teeth = (rows < top + 0.3 * height) | (rows > top + 0.88 * height)
                colour = np.where(teeth[..., None], [[[225, 220, 205]]], [[[60, 20, 25]]])
                alpha = cavity[..., None] / 255.0
                patch[:] = (patch * (1 - alpha) + colour * alpha).astype(np.uint8)
            matrix = self.frame_matrix(pose, index)
            frame = cv2.warpAffine(canvas, matrix, (self.size, self.size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
            frames[index] = np.clip(frame * pose.contrast + pose.brightness, 0, 255).astype(np.uint8)
            shape = self.landmarks.copy()
            shape[48:68] = marks
            points[index] = shape @ matrix[:, :2].T + matrix[:, 2]
        return frames, points


def portrait() -> np.ndarray:
    """Grace Hopper's portrait from matplotlib's sample data, RGB (600x512)."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def portrait_variant(variant: int) -> np.ndarray:
    """Face ``variant`` of a corpus: 0 the portrait; 1 a second person made from it, mirrored with cooler skin and darker hair.

    matplotlib ships one portrait only. Mirroring moves every feature (the parting, the collar, the medals), and the
    tone curve changes skin and hair, so the two faces of a ``--faces 2`` clip differ at a glance.
    """
    image = portrait()
    if variant == 0:
        return image
    mirrored = image[:, ::-1].astype(np.float32) / 255.0
    toned = mirrored**1.25 * np.array([0.88, 0.97, 1.08], np.float32)
    return np.clip(np.round(toned * 255.0), 0, 255).astype(np.uint8)


def idle_track(rng: np.random.Generator, frames: int) -> np.ndarray:
    """(frames, 3) viseme offsets of a face that is not talking: the lips part and close a little, slowly and at random."""
    sigma = 4.0  # frames: movements of about a third of a second
    kernel = np.exp(-0.5 * (np.arange(-12, 13) / sigma) ** 2)
    noise = rng.standard_normal((frames + len(kernel) - 1, 2))
    smooth = np.stack([np.convolve(noise[:, k], kernel / np.sqrt((kernel**2).sum()), mode="valid") for k in range(2)], axis=1)
    offsets = np.zeros((frames, 3))
    offsets[:, 0] = 0.08 * np.clip(smooth[:, 0], 0, None)  # open: never past a slight parting
    offsets[:, 1] = 0.05 * smooth[:, 1]  # spread
    return offsets


@cache
def portrait_landmarks(variant: int = 0) -> np.ndarray:
    """The 68 landmarks of :func:`portrait_variant`, from the FaceMesh backend prep-lips uses."""
    from ..lips.landmarks import MediaPipeFaceMesh

    with MediaPipeFaceMesh() as detector:
        return max(detector.detect(portrait_variant(variant), 0), key=lambda face: face.size).points
