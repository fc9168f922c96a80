"""Which ffmpeg binary omniavsr runs.

Order: ``$OMNIAVSR_FFMPEG`` (an explicit choice), then ``ffmpeg`` on PATH (the system build, usually with
ffprobe and hardware codecs), then the static binary that the ``imageio-ffmpeg`` wheel carries, so a fresh
``pip install`` works without apt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache

from ..errors import ModelUnavailable


@dataclass(frozen=True)
class FFmpeg:
    path: str
    source: str  # "OMNIAVSR_FFMPEG", "PATH" or "imageio-ffmpeg"


@cache
def find_ffmpeg() -> FFmpeg:
    override = os.environ.get("OMNIAVSR_FFMPEG")
    if override:
        if shutil.which(override) is None:
            raise ModelUnavailable(
                f"OMNIAVSR_FFMPEG={override} is not an executable; point it at an ffmpeg binary or unset it",
                code="E_NO_FFMPEG",
            )
        return FFmpeg(shutil.which(override), "OMNIAVSR_FFMPEG")
    on_path = shutil.which("ffmpeg")
    if on_path:
        return FFmpeg(on_path, "PATH")
    try:
        import imageio_ffmpeg

        return FFmpeg(imageio_ffmpeg.get_ffmpeg_exe(), "imageio-ffmpeg")
    except (ImportError, RuntimeError):
        raise ModelUnavailable(
            "no ffmpeg found: install it (apt-get install ffmpeg) or reinstall omniavsr so imageio-ffmpeg is present",
            code="E_NO_FFMPEG",
        ) from None


def ffmpeg_version(ffmpeg: FFmpeg) -> str:
    """The first line of ``ffmpeg -version``, e.g. ``ffmpeg version 7.1 Copyright ...`` shortened to ``7.1``."""
    result = subprocess.run([ffmpeg.path, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30, check=True)
    first = result.stdout.splitlines()[0] if result.stdout else ""
    words = first.split()
    return words[2] if len(words) > 2 and words[:2] == ["ffmpeg", "version"] else first
