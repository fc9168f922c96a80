"""Who is speaking: every face tracked, each track's mouth scored against the audio, the speaker's crops chosen.

:class:`SpeakerCrops` runs beside the one-face cropper of lips/tracking.py. It follows every face
(face_tracks.FaceTracker), measures each one's mouth opening per frame, and once a decision block (a
transcription chunk, or 16 s in prep-lips) has been seen it labels every frame of the block with the
track whose mouth follows the audio (:func:`speaker_labels`), or :data:`OFF_SCREEN` when speech is heard
and no visible mouth is in sync. Each frame's crop is then taken from the speaking track: one mouth
cropper per track (roi.StreamingCropper) runs once a second face has appeared, so a clip that only ever
shows one face is cropped exactly as before. The method and its measurements: docs/speakers.md.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .face_tracks import FaceTracker, distinct_faces
from .landmarks import Face
from .roi import StreamingCropper
from .synchrony import ENVELOPE_FLOOR, MIN_FRAMES, mouth_opening, sync_score

# Face selection rules that choose by synchrony: ``speaker`` always, ``auto`` only where several faces are seen.
RULES = ("auto", "speaker")
OFF_SCREEN = -1  # speech no visible mouth is in sync with
UNDECIDED = -2  # no evidence: silence, or no mouth seen long enough
# Windows of 2 s scored every 0.2 s: 2 s picked the right one of two talking mouths 97 % of the time in
# docs/speakers.md's measurements, and a turn of a second still shows in the windows centred on it.
WINDOW_FRAMES = 50
HOP_FRAMES = 5
# A turn whose speaker's mouth scores under this over the whole turn (sync_score, method TURN_METHOD) is off
# screen: no visible mouth says it. Judged per turn, not per 2-s window: a whole sentence is 2-3 times the
# evidence of one window. Chosen on development clips (docs/speakers.md#development-measurements).
MIN_SYNC = 0.66
# Levels alone for that test: a speaking mouth's opening follows the envelope's level closely, while a mouth
# saying other words shares mostly its speech/pause rhythm (pearson+diff, the windows' method, separated less).
TURN_METHOD = "pearson"
# The lags searched, +-2 frames (+-80 ms): the speaking mouth's peak lies there in synchronised media, and
# every further lag is another chance for a mouth that only shares the speech/pause rhythm to score high.
SYNC_LAG_FRAMES = 2
# Media are often muxed with the sound early or late by more than SYNC_LAG_FRAMES, and then no mouth is in sync
# at those lags. Each judged block's best mouth is also searched over +-OFFSET_SEARCH_FRAMES (+-320 ms); where it
# scores at least OFFSET_MIN_SYNC its lag is kept, and once two kept lags agree (within a frame of their median)
# on one beyond SYNC_LAG_FRAMES, the input's later blocks are judged around that offset. Two, because a mouth
# saying other words also has a best lag somewhere, but not the same one twice (docs/speakers.md).
OFFSET_SEARCH_FRAMES = 8
OFFSET_MIN_SYNC = 0.6
# A speaker turn lasts at least this many hops (1 s): shorter label runs are the neighbours' (majority filter).
SMOOTHING_HOPS = 5
# prep-lips, which has no chunks, decides in blocks of this many frames (16 s, a transcription chunk's length).
BLOCK_FRAMES = 400


def speaker_labels(openings: dict[int, np.ndarray], envelope: np.ndarray) -> np.ndarray:
    """Per frame of a span: the id of the track whose mouth follows ``envelope``, OFF_SCREEN or UNDECIDED.

    ``openings`` maps each track seen in the span to its (T,) mouth opening (NaN where it was not seen);
    ``envelope`` is the span's (T,) audio envelope. Each hop of :data:`HOP_FRAMES` frames is judged by the
    window of :data:`WINDOW_FRAMES` centred on it: its best-scoring track. The hop labels are smoothed over
    :data:`SMOOTHING_HOPS`, and undecided hops take the label of the nearest decided one. Then each turn (a
    run of one track's label) whose track scores under :data:`MIN_SYNC` over the turn is OFF_SCREEN.
    """
    frames = len(envelope)
    hops = max(1, -(-frames // HOP_FRAMES))
    hop_labels = np.full(hops, UNDECIDED)
    for hop in range(hops):
        centre = hop * HOP_FRAMES + HOP_FRAMES // 2
        window = _window(centre, WINDOW_FRAMES, frames)
        scores = {track: sync_score(opening[window], envelope[window], SYNC_LAG_FRAMES)[0] for track, opening in openings.items()}
        scores = {track: score for track, score in scores.items() if not np.isnan(score)}
        if scores:
            hop_labels[hop] = max(scores, key=scores.get)
    smoothed = _majority(hop_labels, SMOOTHING_HOPS)
    hop_labels = _nearest(smoothed, smoothed != UNDECIDED)
    labels = np.repeat(hop_labels, HOP_FRAMES)[:frames]
    for start, end in _runs(labels):
        track = int(labels[start])
        if track < 0:
            continue
        # A turn shorter than a window is judged on the window around it: fewer frames are too little evidence.
        turn = _window((start + end) // 2, max(end - start, WINDOW_FRAMES), frames)
        score = sync_score(openings[track][turn], envelope[turn], SYNC_LAG_FRAMES, method=TURN_METHOD)[0]
        if score < MIN_SYNC:  # NaN (silence, a still mouth) is no evidence either way: the label stays
            labels[start:end] = OFF_SCREEN
    return labels


def _window(centre: int, width: int, frames: int) -> slice:
    """``width`` frames centred on ``centre``, moved to lie within 0..frames (all of them when fewer)."""
    first = max(0, min(centre - width // 2, frames - width))
    return slice(first, first + width)


def _runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of equal consecutive labels."""
    edges = np.flatnonzero(np.diff(labels)) + 1
    bounds = [0, *edges.tolist(), len(labels)]
    return [(start, end) for start, end in zip(bounds[:-1], bounds[1:]) if end > start]


def _majority(labels: np.ndarray, width: int) -> np.ndarray:
    """Each decided label replaced by the most common decided label within ``width`` hops centred on it
    (ties kept as they were)."""
    smoothed = labels.copy()
    half = width // 2
    for k, label in enumerate(labels):
        if label == UNDECIDED:
            continue
        around = labels[max(0, k - half) : k + half + 1]
        values, counts = np.unique(around[around != UNDECIDED], return_counts=True)
        if (counts == counts.max()).sum() == 1:
            smoothed[k] = values[counts.argmax()]
    return smoothed


def _nearest(labels: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Each label replaced by the nearest usable one (the earlier on a tie); unchanged when none is usable."""
    chosen = np.flatnonzero(usable)
    if not len(chosen):
        return labels
    positions = np.arange(len(labels))
    after = np.clip(np.searchsorted(chosen, positions), 0, len(chosen) - 1)
    before = np.clip(after - 1, 0, len(chosen) - 1)
    take_before = np.abs(positions - chosen[before]) <= np.abs(chosen[after] - positions)
    return labels[np.where(take_before, chosen[before], chosen[after])]


def main_label(labels: np.ndarray) -> int:
    """The label most frames of a stretch carry, undecided frames aside (UNDECIDED when all are)."""
    decided = labels[labels != UNDECIDED]
    if not len(decided):
        return UNDECIDED
    values, counts = np.unique(decided, return_counts=True)
    return int(values[counts.argmax()])


def mostly_off_screen(labels: np.ndarray) -> bool:
    """Whether most of a chunk's judged frames are speech no visible face is in sync with."""
    decided = labels != UNDECIDED
    return bool(decided.any()) and int((labels == OFF_SCREEN).sum()) * 2 > int(decided.sum())


def speaker_name(label: int) -> str | None:
    """What outputs call a label: "face 1" for track 0 (tracks are numbered from 1 for people), "off-screen"."""
    if label == OFF_SCREEN:
        return "off-screen"
    return None if label == UNDECIDED else f"face {label + 1}"


@dataclass
class _TrackCropper:
    first_frame: int
    cropper: StreamingCropper
    finished: bool = False


class SpeakerCrops:
    """Fed every frame's faces in order (:meth:`push`) beside the one-face cropper; gives each frame's label
    (:attr:`labels`) and the speaker's crop (:meth:`crop`) once the frame's decision block is complete.

    ``envelope()`` returns the whole clip's audio envelope (called at the first decision, so a clip
    that never shows two faces in ``auto`` never decodes it); ``blocks`` are the spans decided together
    (None: every :data:`BLOCK_FRAMES` frames). ``always`` (rule ``speaker``): judge synchrony even with one
    face, so a single face out of sync is OFF_SCREEN, and crop every track from its first frame.
    """

    def __init__(self, envelope: Callable[[], np.ndarray], blocks: list[tuple[int, int]] | None, always: bool):
        self.tracker = FaceTracker()
        self.lags: list[int] = []  # the best mouth's lag in each confident block (OFFSET_MIN_SYNC)
        self.offset = 0  # frames the mouth moves after its sound (negative: before), found from ``lags``
        self._envelope_source, self._envelope = envelope, None
        self.blocks = blocks
        self.always = always
        self.several_seen = always  # crop each track once two faces share a frame (or from the start: ``always``)
        # Before that frame every crop is the one-face cropper's whoever speaks: handed on without waiting for
        # the block's decision (a clip that shows one face streams as it did before speaker selection).
        self.several_from: int | None = 0 if always else None
        self.croppers: dict[int, _TrackCropper] = {}
        self.crops: dict[int, dict[int, np.ndarray]] = {}  # track -> frame -> crop, until the frame is handed on
        self.points: dict[int, dict[int, np.ndarray]] = {}  # track -> frame -> landmarks, until the block is decided
        self.boxes: dict[int, dict[int, tuple[float, float, float, float]]] = {}  # track -> frame -> box
        self.labels: dict[int, int] = {}  # frame -> label, for the frames of decided blocks
        self._shown: dict[int, int] = {}  # frame -> the track whose crop it shows, until it is handed on
        self._handed = 0  # frames before this one have been handed on
        self._starts = [start for start, _ in blocks] if blocks is not None else None
        self.frames = 0
        self._block = 0  # the next block to decide

    def push(self, index: int, frame: np.ndarray, faces: list[Face]) -> None:
        faces = distinct_faces(faces)
        ids = self.tracker.update(index, faces)
        self.frames = index + 1
        if len(faces) > 1 and not self.several_seen:
            self.several_seen, self.several_from = True, index
        for track, face in zip(ids, faces):
            self.points.setdefault(track, {})[index] = face.points
            self.boxes.setdefault(track, {})[index] = face.box
        if self.several_seen:
            open_ids = set(self.tracker.open_ids)
            for track in open_ids - self.croppers.keys():
                self.croppers[track] = _TrackCropper(index, StreamingCropper())
            points = {track: face.points for track, face in zip(ids, faces)}
            for track, state in self.croppers.items():
                if state.finished:
                    continue
                if track in open_ids:
                    self._keep(track, state.cropper.push(frame, points.get(track)))
                else:  # the track ended (no face for over a second): its crops up to its last face are final
                    self._keep(track, state.cropper.finish())
                    state.finished = True
        self._decide(final=False)

    def finish(self) -> None:
        for track, state in self.croppers.items():
            if not state.finished:
                self._keep(track, state.cropper.finish())
                state.finished = True
        self._decide(final=True)

    def ready(self, index: int) -> bool:
        """Whether frame ``index``'s label and crop are known."""
        block = self._block_of(index)
        if block is None or self.several_from is None or index < self.several_from:
            return True
        if block >= self._block:
            return False
        state = self.croppers.get(self._shown.get(index, UNDECIDED))
        return state is None or state.finished or index < state.first_frame or index < state.cropper.next_index

    def crop(self, index: int, fallback: np.ndarray) -> np.ndarray:
        """The frame's crop of the track chosen for it (``fallback``, the one-face crop, where it has none),
        forgetting what earlier frames kept."""
        self._handed = index + 1
        crop = self.crops.get(self._shown.pop(index, UNDECIDED), {}).get(index, fallback)
        for kept in self.crops.values():  # each track's crops were kept in frame order
            while kept and next(iter(kept)) <= index:
                del kept[next(iter(kept))]
        return crop

    def box_rows(self, track: int, start: int, end: int) -> np.ndarray:
        """(end - start, 4) boxes of ``track`` over frames start..end-1, NaN where it was not seen."""
        rows = np.full((max(end - start, 0), 4), np.nan)
        boxes = self.boxes.get(track, {})
        for frame in range(start, end):
            if (box := boxes.get(frame)) is not None:
                rows[frame - start] = box
        return rows

    def _keep(self, track: int, ready: list) -> None:
        kept = self.crops.setdefault(track, {})
        for index, crop, _geometry in ready:
            kept[index] = crop

    def _span(self, block: int) -> tuple[int, int]:
        if self.blocks is not None:
            return self.blocks[block]
        return block * BLOCK_FRAMES, (block + 1) * BLOCK_FRAMES

    def _block_count(self, final: bool) -> int | None:
        if self.blocks is not None:
            return len(self.blocks)
        return -(-self.frames // BLOCK_FRAMES) if final else None

    def _block_of(self, index: int) -> int | None:
        if self.blocks is None:
            return index // BLOCK_FRAMES
        block = bisect.bisect_right(self._starts, index) - 1
        return block if block >= 0 and index < self.blocks[block][1] else None

    def _decide(self, final: bool) -> None:
        """Label every block whose frames have all been seen (all blocks when ``final``)."""
        count = self._block_count(final)
        while count is None or self._block < count:
            start, end = self._span(self._block)
            if not final and self.frames < end:
                return
            end = min(end, self.frames)
            labels = self._block_labels(start, end)
            self.labels.update(zip(range(start, end), labels.tolist()))
            # Off-screen speech and silence show the nearest speaker's mouth: the model is given one face throughout.
            shown = _nearest(labels, labels >= 0).tolist()
            self._shown.update((frame, track) for frame, track in zip(range(start, end), shown) if frame >= self._handed)
            self._block += 1
            for track in self.points:  # the landmarks of decided frames are not needed again
                self.points[track] = {frame: value for frame, value in self.points[track].items() if frame >= end}

    def _block_labels(self, start: int, end: int) -> np.ndarray:
        frames = max(end - start, 0)
        seen = {}  # the tracks seen in enough of the block's frames, with those frames
        for track, points in self.points.items():
            inside = [frame for frame in points if start <= frame < end]
            if len(inside) >= MIN_FRAMES:
                seen[track] = inside
        if not seen:
            return np.full(frames, UNDECIDED)
        if len(seen) == 1 and not self.always:
            return np.full(frames, next(iter(seen)))  # one face: it is the speaker, as before speaker selection
        openings = {}
        for track, inside in seen.items():
            curve = np.full(frames, np.nan)
            curve[np.array(inside) - start] = mouth_opening(np.stack([self.points[track][frame] for frame in inside]))
            openings[track] = curve
        if self._envelope is None:
            self._envelope = self._envelope_source()
        envelope = np.zeros(frames)
        available = self._envelope[start:end]
        envelope[: len(available)] = available
        self._learn_offset(openings, envelope)
        return speaker_labels(openings, _delayed(envelope, self.offset))

    def _learn_offset(self, openings: dict[int, np.ndarray], envelope: np.ndarray) -> None:
        found = [sync_score(opening, envelope, OFFSET_SEARCH_FRAMES, method=TURN_METHOD) for opening in openings.values()]
        found = [(score, lag) for score, lag in found if not np.isnan(score)]
        if found and (best := max(found))[0] >= OFFSET_MIN_SYNC:
            self.lags.append(best[1])
        median = int(np.round(np.median(self.lags))) if self.lags else 0
        agreeing = sum(abs(lag - median) <= 1 for lag in self.lags)
        self.offset = median if agreeing >= 2 and abs(median) > SYNC_LAG_FRAMES else 0


def _delayed(envelope: np.ndarray, lag: int) -> np.ndarray:
    """``envelope`` moved ``lag`` frames later (earlier when negative), silence where nothing moved in: a mouth at
    lag ``lag`` from the original is at lag 0 from the result."""
    moved = np.full_like(envelope, ENVELOPE_FLOOR)
    if lag >= 0:
        moved[lag:] = envelope[: len(envelope) - lag]
    else:
        moved[:lag] = envelope[-lag:]
    return moved
