"""Writes a 2-second 224x224 video of a real face (the portrait bundled with matplotlib, gently moving).

Used by `make demo` to show `omniavsr prep-lips` without any download: python make_face_clip.py OUT.mp4
"""

import math
import subprocess
import sys
from pathlib import Path

import cv2
import matplotlib
import numpy as np

from omniavsr_cli.media.ffmpeg import find_ffmpeg


def main(destination: str) -> None:
    portrait = cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"))
    frames = []
    for k in range(50):
        angle, scale = 4 * math.sin(k / 6), 224 / 300 * (1 + 0.05 * math.sin(k / 9))
        matrix = cv2.getRotationMatrix2D((264, 240), angle, scale)
        matrix[:, 2] += (112 - 264, 112 - 240) + np.array([6 * math.sin(k / 7), 0])
        frames.append(cv2.warpAffine(portrait, matrix, (224, 224), borderMode=cv2.BORDER_REPLICATE))
    command = [
        find_ffmpeg().path, "-nostdin", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", "224x224",
        "-r", "25", "-i", "-", "-f", "lavfi", "-i", "sine=frequency=300:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", destination,
    ]  # fmt: skip
    subprocess.run(command, input=np.stack(frames).tobytes(), check=True)


if __name__ == "__main__":
    main(sys.argv[1])
