"""Draws docs/figures/roi-geometry.png: the mouth-ROI geometry on a real face, step by step.

Run from the repository root: .venv/bin/python docs/figures/roi_geometry.py
"""

from pathlib import Path

import cv2
import matplotlib
import numpy as np

from omniavsr_cli.lips import roi
from omniavsr_cli.lips.landmarks import MediaPipeFaceMesh

GREEN, RED, CYAN, YELLOW = (60, 220, 60), (255, 60, 60), (0, 200, 255), (255, 220, 0)


def label(image, text):
    cv2.putText(image, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def main() -> None:
    portrait = cv2.cvtColor(cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")), cv2.COLOR_BGR2RGB)
    turn = cv2.getRotationMatrix2D((256, 300), 10, 1.0)
    frame = cv2.warpAffine(portrait, turn, (512, 600), borderMode=cv2.BORDER_REPLICATE)
    with MediaPipeFaceMesh() as detector:
        [face] = detector.detect(frame, 0)
    reference = roi.mean_face()
    geometry = roi.frame_geometry(np.stack([face.points]), 0, reference)

    source = frame.copy()
    for number, (x, y) in enumerate(face.points):
        stable = number in roi.STABLE_POINTS
        cv2.circle(source, (round(x), round(y)), 5 if stable else 2, YELLOW if stable else (RED if number >= 48 else GREEN), -1)
    source = label(cv2.resize(source, (256, 300))[22:278], "1. landmarks")

    warped = cv2.warpAffine(frame, geometry.matrix, (256, 256))
    for x, y in reference:
        cv2.circle(warped, (round(x), round(y)), 2, GREEN, -1)
    window = geometry.window
    cv2.rectangle(warped, (window.left, window.top), (window.left + 95, window.top + 95), CYAN, 2)
    cv2.rectangle(warped, (window.left + 4, window.top + 4), (window.left + 91, window.top + 91), YELLOW, 1)
    label(warped, "2. warp to mean face")

    crop = roi.mouth_crop(frame, geometry.matrix, window)
    crop = cv2.resize(crop, (256, 256), interpolation=cv2.INTER_NEAREST)
    cv2.rectangle(crop, (11, 11), (244, 244), YELLOW, 1)
    label(crop, "3. 96x96 crop")

    gap = np.full((256, 8, 3), 255, np.uint8)
    figure = np.concatenate([source, gap, warped, gap, crop], axis=1)
    target = Path(__file__).with_name("roi-geometry.png")
    cv2.imwrite(str(target), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR))
    print(target)


if __name__ == "__main__":
    main()
