"""``--debug-crops``: one PNG per clip for a person to check the crops (frames with landmarks beside their crops)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

TILES = 12
COLUMNS = 4
TILE_HEIGHT = 160
LIP_COLOUR = (255, 64, 64)
FACE_COLOUR = (64, 220, 64)
WINDOW_COLOUR = (0, 200, 255)


def sample_indices(expected_frames: int) -> set[int]:
    """Frames spread evenly over the clip's expected length."""
    if expected_frames <= TILES:
        return set(range(max(expected_frames, 1)))
    return {round(i * (expected_frames - 1) / (TILES - 1)) for i in range(TILES)}


class ContactSheet:
    def __init__(self, expected_frames: int):
        self.wanted = sample_indices(expected_frames)
        self.frames: dict[int, np.ndarray] = {}
        self.crops: dict[int, np.ndarray] = {}

    def add_frame(self, index: int, frame: np.ndarray, points: np.ndarray | None) -> None:
        """Keep a square view around the face (the whole frame when there is none) with its landmarks drawn."""
        if index not in self.wanted:
            return
        height, width = frame.shape[:2]
        if points is None:
            left, top, side = 0, 0, max(height, width)
        else:
            (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
            side = max(x1 - x0, y1 - y0) * 1.6
            left, top = (x0 + x1 - side) / 2, (y0 + y1 - side) / 2
        scale = TILE_HEIGHT / side
        to_tile = np.array([[scale, 0, -left * scale], [0, scale, -top * scale]])
        tile = cv2.warpAffine(frame, to_tile, (TILE_HEIGHT, TILE_HEIGHT), flags=cv2.INTER_AREA)
        if points is None:
            cv2.putText(tile, "no face", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, LIP_COLOUR, 1, cv2.LINE_AA)
        else:
            for number, (x, y) in enumerate(points @ to_tile[:, :2].T + to_tile[:, 2]):
                cv2.circle(tile, (round(x), round(y)), 1, LIP_COLOUR if number >= 48 else FACE_COLOUR, -1, cv2.LINE_AA)
        cv2.putText(tile, str(index), (4, TILE_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        self.frames[index] = tile

    def add_crop(self, index: int, crop: np.ndarray) -> None:
        if index in self.wanted:
            tile = cv2.resize(crop, (TILE_HEIGHT, TILE_HEIGHT), interpolation=cv2.INTER_NEAREST)
            # The 88x88 centre the model actually sees.
            margin = round(4 * TILE_HEIGHT / crop.shape[0])
            cv2.rectangle(tile, (margin, margin), (TILE_HEIGHT - margin - 1, TILE_HEIGHT - margin - 1), WINDOW_COLOUR, 1)
            self.crops[index] = tile

    def save(self, destination: Path) -> None:
        indices = sorted(set(self.frames) & set(self.crops))
        if not indices:
            return
        pairs = [np.concatenate([self.frames[i], np.zeros((TILE_HEIGHT, 2, 3), np.uint8), self.crops[i]], axis=1) for i in indices]
        pairs += [np.zeros_like(pairs[0])] * (-len(pairs) % COLUMNS)
        gap = np.zeros((TILE_HEIGHT, 6, 3), np.uint8)
        rows = [np.concatenate([x for pair in pairs[r : r + COLUMNS] for x in (pair, gap)], axis=1) for r in range(0, len(pairs), COLUMNS)]
        sheet = np.concatenate([x for row in rows for x in (row, np.zeros((6, row.shape[1], 3), np.uint8))], axis=0)
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        if ok:
            destination.write_bytes(encoded.tobytes())
