"""Writes a short 224x224 talking-face video: the portrait bundled with matplotlib, gently moving, with
speech-like audio (what `omniavsr bench` generates). Used by `make demo`, no download needed:

    python make_face_clip.py OUT.mp4 [SECONDS]
"""

import shutil
import sys
import tempfile
from pathlib import Path

from omniavsr_cli.bench import generated_media


def main(destination: str, seconds: float = 4.0) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        shutil.move(generated_media(Path(scratch), seconds), destination)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 4.0)
