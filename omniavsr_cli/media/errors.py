"""Media failures: a :class:`~omniavsr_cli.errors.MediaError` each, with its own stable code so callers can report and branch on it."""

from __future__ import annotations

from ..errors import MediaError, parameter
from ..timebase import MS_PER_FRAME


def missing_file(path: str) -> MediaError:
    return MediaError(f"{path}: no such file; check the path", code="E_NOT_FOUND")


def not_media(path: str, reason: str) -> MediaError:
    return MediaError(f"{path}: not a media file ffmpeg can read ({reason}); give an audio or video file", code="E_NOT_MEDIA")


def corrupt(path: str, reason: str) -> MediaError:
    return MediaError(f"{path}: truncated or corrupt ({reason}); re-download or re-encode it (ffmpeg -i IN OUT.mp4)", code="E_CORRUPT")


def no_audio(path: str) -> MediaError:
    return MediaError(f"{path}: has no audio stream; use a video-only mode (VSR) or give a file with sound", code="E_NO_AUDIO")


def no_video(path: str) -> MediaError:
    return MediaError(
        f"{path}: has no video stream, so there are no lips to read; give a video file (audio alone is transcribed with {parameter('mode')} asr)",
        code="E_NO_VIDEO",
    )


def too_short(path: str, frames: int, needed: int) -> MediaError:
    return MediaError(
        f"{path}: {frames} video frame(s), too short to lip-read: one video token takes {needed} ({needed * MS_PER_FRAME} ms) "
        f"at this video rate; give a longer video (or, if it has sound, use {parameter('mode')} auto or asr)",
        code="E_TOO_SHORT",
    )
