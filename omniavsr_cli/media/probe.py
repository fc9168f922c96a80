"""What a media file holds: duration, streams, frame rate (and whether it varies), audio rate and channels.

PyAV reads the container in-process (no ffprobe needed; imageio-ffmpeg ships none).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from . import errors


@dataclass(frozen=True)
class VideoStream:
    width: int
    height: int
    fps: float  # average frame rate over the stream
    nominal_fps: float  # the rate the container declares (r_frame_rate)
    variable_frame_rate: bool
    codec: str
    frames: int | None  # as declared by the container, when it says
    rotation: int = 0  # degrees from the display matrix; ffmpeg applies it when decoding
    duration: float | None = None  # seconds, the stream's own (it may end before the audio), when the container says

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) of the decoded, upright frames."""
        return (self.height, self.width) if self.rotation % 180 else (self.width, self.height)


@dataclass(frozen=True)
class AudioStream:
    sample_rate: int
    channels: int
    codec: str


@dataclass(frozen=True)
class MediaInfo:
    path: str
    container: str
    duration: float | None  # seconds
    video: VideoStream | None
    audio: AudioStream | None

    def require_audio(self) -> AudioStream:
        if self.audio is None:
            raise errors.no_audio(self.path)
        return self.audio

    def require_video(self) -> VideoStream:
        if self.video is None:
            raise errors.no_video(self.path)
        return self.video


def _rate(value: Fraction | None) -> float:
    return float(value) if value else 0.0


# Enough packets to see a phone's frame-rate changes, few enough to probe a long file in milliseconds.
_TIMESTAMP_SAMPLE = 600
# Containers round timestamps to their time base, so a constant rate shows a tick of jitter; more than this
# spread between frame intervals means the rate really varies.
_VARIABLE_SPREAD = 0.2


def _frame_intervals(container, stream) -> list[float]:
    stamps = []
    for packet in container.demux(stream):
        if packet.pts is not None:
            stamps.append(float(packet.pts * stream.time_base))
        if len(stamps) >= _TIMESTAMP_SAMPLE:
            break
    stamps.sort()  # packets come in decoding order; B-frames make presentation order differ
    return [b - a for a, b in zip(stamps, stamps[1:]) if b > a]


def _stream_seconds(stream) -> float | None:
    """A stream's own declared length: MP4/MOV tracks carry one, Matroska/WebM a DURATION tag (HH:MM:SS.nnnnnnnnn)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    try:
        hours, minutes, seconds = stream.metadata.get("DURATION", "").split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def _video_stream(container, stream) -> VideoStream:
    average, nominal = _rate(stream.average_rate), _rate(stream.base_rate or stream.guessed_rate)
    first = next(container.decode(stream), None)
    rotation = int(round(first.rotation)) % 360 if first is not None and getattr(first, "rotation", None) else 0
    intervals = sorted(_frame_intervals(container, stream))
    variable = bool(average and nominal) and abs(average - nominal) / nominal > 0.001
    if len(intervals) >= 2:
        median = intervals[len(intervals) // 2]
        variable = variable or (intervals[-1] - intervals[0]) / median > _VARIABLE_SPREAD
        average = average or 1 / median
    return VideoStream(
        stream.codec_context.width,
        stream.codec_context.height,
        average or nominal,
        nominal or average,
        variable,
        stream.codec_context.name,
        stream.frames or None,
        rotation,
        _stream_seconds(stream),
    )


def probe(path: str | Path) -> MediaInfo:
    import av

    name = str(path)
    file = Path(name)
    if not file.exists():
        raise errors.missing_file(name)
    if file.is_dir():
        raise errors.not_media(name, "it is a directory")
    if file.stat().st_size == 0:
        raise errors.not_media(name, "the file is empty")
    try:
        with av.open(name) as container:
            video = next((s for s in container.streams.video), None)
            audio = next((s for s in container.streams.audio), None)
            if video is None and audio is None:
                raise errors.not_media(name, "no audio or video stream")
            duration = container.duration / av.time_base if container.duration else None
            if duration is None and video is not None and video.duration and video.time_base:
                duration = float(video.duration * video.time_base)
            return MediaInfo(
                name,
                container.format.name,
                duration,
                _video_stream(container, video) if video is not None else None,
                AudioStream(audio.codec_context.sample_rate, audio.codec_context.channels, audio.codec_context.name)
                if audio is not None
                else None,
            )
    except av.error.FFmpegError as error:
        reason = str(getattr(error, "strerror", None) or error)
        container_kind = _signature(file)
        if container_kind:
            raise errors.corrupt(name, f"looks like {container_kind} but cannot be opened: {reason}") from None
        raise errors.not_media(name, reason) from None


_SIGNATURES = [
    (4, b"ftyp", "an MP4/MOV file"),
    (0, b"\x1a\x45\xdf\xa3", "a Matroska/WebM file"),
    (0, b"RIFF", "a RIFF (WAV/AVI) file"),
    (0, b"OggS", "an Ogg file"),
    (0, b"fLaC", "a FLAC file"),
    (0, b"ID3", "an MP3 file"),
    (0, b"GIF8", "a GIF file"),
]


def _signature(file: Path) -> str | None:
    """Which container the first bytes announce, so a damaged media file is not called 'not media'."""
    with open(file, "rb") as handle:
        head = handle.read(16)
    return next((kind for offset, magic, kind in _SIGNATURES if head[offset : offset + len(magic)] == magic), None)
