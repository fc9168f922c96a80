"""One clip's mouth crops, streamed: 25 fps frames -> landmarks -> one face per frame -> roi.StreamingCropper.

With the rules ``auto`` and ``speaker`` every face is also tracked and each frame's crop comes from the face
whose mouth follows the audio (speakers.SpeakerCrops); ``auto`` does so only where several faces are seen.

Both ``prep-lips`` (which writes the crops) and ``transcribe`` (which feeds them to the model) read crops
from here, so they are the same crops.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from ..errors import ClipFailed, UsageError, parameter
from ..media.decode import stream_video
from ..media.probe import MediaInfo
from ..timing import StageTimer
from . import face_select, roi, speakers
from .detectors import open_detector
from .face_select import FaceSelector
from .landmarks import Face
from .speakers import SpeakerCrops

# Every face selection rule: by synchrony with the audio first (auto is the default), then by position.
RULES = (*speakers.RULES, *face_select.RULES)


def check_face_select(rule: str) -> None:
    """Raise a UsageError naming the choices unless ``rule`` is one of :data:`RULES`."""
    if rule not in RULES:
        raise UsageError(f"{parameter('face_select')} {rule!r}: choose one of {', '.join(RULES)}")


# Frames arrive in chunks of this size; a smaller chunk than decoding's default keeps the resident set low
# (a chunk stays alive while crops still wait on it) at no measurable cost in speed.
VIDEO_CHUNK_BYTES = 16 * 2**20


class MouthTrack:
    """Iterate :meth:`crops` once; afterwards ``detected``, ``scores``, ``faces_seen`` describe the clip.

    ``min_face_coverage`` is checked once every frame has been seen and before the crops that waited for
    the end are made, so a clip that fails it costs no more cropping. ``on_frame(index, frame, face)``
    sees every decoded frame (the contact sheet uses it).

    With ``face_select`` ``auto`` or ``speaker`` and an ``envelope`` (a function returning the clip's
    per-frame audio envelope, synchrony.audio_envelope), :attr:`speakers` labels each frame with its speaker,
    decided over ``blocks`` (frame spans; None: fixed blocks); without audio these rules take the largest face.
    """

    def __init__(
        self,
        path: Path,
        info: MediaInfo,
        detector: str,
        face_select: str,
        *,
        clip_id: str | None = None,
        min_face_coverage: float = 0.0,
        on_frame: Callable[[int, np.ndarray, Face | None], None] | None = None,
        timer: StageTimer | None = None,
        video: Callable[[], Iterable[np.ndarray]] | None = None,
        envelope: Callable[[], np.ndarray] | None = None,
        blocks: list[tuple[int, int]] | None = None,
    ):
        check_face_select(face_select)
        self.path, self.info, self.detector, self.clip_id = path, info, detector, clip_id
        self.face_select, self.min_face_coverage, self.on_frame = face_select, min_face_coverage, on_frame
        self.cropper = roi.StreamingCropper()
        self.scores: list[float] = []
        self.faces_seen = 0
        self.off_centre_frames = 0  # frames whose mouth lay beyond auto_avsr's limit (window moved back)
        # the frames in (n, H, W, 3) chunks, from the start each time it is called (a long gap is read twice)
        self.video = video or (lambda: stream_video(self.path, VIDEO_CHUNK_BYTES, info=self.info))
        self.timer = timer or StageTimer()  # the landmark detector's seconds, as "landmarks" (omniavsr bench)
        by_sync = face_select in speakers.RULES and envelope is not None
        self.speakers = SpeakerCrops(envelope, blocks, always=face_select == "speaker") if by_sync else None
        self._waiting: deque = deque()  # one-face crops whose speaker is not decided yet

    @property
    def detected(self) -> np.ndarray:
        return np.array([p is not None for p in self.cropper.raw], dtype=bool)

    @property
    def frames(self) -> int:
        return len(self.cropper.raw)

    @property
    def face_coverage(self) -> float:
        return round(float(self.detected.mean()), 4) if self.frames else 0.0

    def _counted(self, ready: list) -> Iterator[tuple[int, np.ndarray]]:
        """The crops now ready, in frame order: with speaker selection, each once its speaker is decided."""
        self._waiting.extend(ready)
        while self._waiting and (self.speakers is None or self.speakers.ready(self._waiting[0][0])):
            index, crop, geometry = self._waiting.popleft()
            self.off_centre_frames += geometry.window.clamped
            yield index, crop if self.speakers is None else self.speakers.crop(index, crop)

    def crops(self) -> Iterator[tuple[int, np.ndarray]]:
        """(frame index, 96x96 RGB crop) for every frame, in order; raises errors.ClipFailed (no frames, no face, too few faces)."""
        video = self.info.require_video()
        selector = FaceSelector(self.face_select if self.face_select in face_select.RULES else "largest", video.display_size)
        with open_detector(self.detector, self.clip_id) as detector:
            index = 0
            for chunk in self.video():
                for frame in chunk:
                    with self.timer.timed("landmarks"):
                        faces = detector.detect(frame, index)
                    self.faces_seen = max(self.faces_seen, len(faces))
                    face = selector.choose(faces)
                    self.scores.append(math.nan if face is None else face.score)
                    if self.on_frame is not None:
                        self.on_frame(index, frame, face)
                    if self.speakers is not None:
                        with self.timer.timed("speakers"):
                            self.speakers.push(index, frame, faces)
                    yield from self._counted(self.cropper.push(frame, None if face is None else face.points))
                    index += 1
            detector.check_frame_count(index)
        detected = self.detected
        if not len(detected):
            raise ClipFailed(f"{self.path}: no video frames could be decoded", code="E_NO_FRAMES")
        if not detected.any():
            raise ClipFailed(
                f"{self.path}: no face found in any of {len(detected)} frames; lip reading needs a face in view "
                f"(another {parameter('detector')} may find a small or turned one)",
                code="E_NO_FACE",
            )
        if self.face_coverage < self.min_face_coverage:
            raise ClipFailed(
                f"{self.path}: a face was found in only {self.face_coverage:.0%} of the frames "
                f"({parameter('min_face_coverage')} {self.min_face_coverage:g}); longest gap {longest_run(~detected)} frames",
                code="E_LOW_FACE_COVERAGE",
            )
        if self.speakers is not None:
            with self.timer.timed("speakers"):
                self.speakers.finish()
        yield from self._counted(self.cropper.finish())
        if self.cropper.overflowed:  # a long stretch without a face: crop the rest from a second decode
            index = 0
            for chunk in self.video():
                for frame in chunk:
                    if index >= self.cropper.next_index:
                        yield from self._counted([self.cropper.crop(index, frame)])
                    index += 1


def longest_run(missing: np.ndarray) -> int:
    longest = current = 0
    for gap in missing:
        current = current + 1 if gap else 0
        longest = max(longest, current)
    return longest
