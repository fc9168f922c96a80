"""Training augmentation, as the official recipe applies it (omni-avsr.md §5.5), and noise for noisy evaluation.

Audio: (cut or pad to the video's length) -> time masks (one span of up to 0.4 s per second) -> noise at an
SNR drawn per utterance from {-5, 0, 5, 10, 15, 20, clean} -> standardised.
Video: /255 -> random 88x88 window of the 96x96 crop -> grey -> time masks (one span of up to 9 frames per
second, zeros before normalisation, so masked frames read -2.55) -> normalised. No flip.

Every random draw comes from a ``numpy.random.Generator`` the caller seeds per item, so a batch is augmented
the same way whichever worker loads it and whether or not the run was resumed.

Differences from the official code, none of which the released weights depend on: a noise file shorter than
the utterance is looped (the official code crashes), and any number of noise files may be given (one is
picked per utterance).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UsageError, finite_number, parameter
from ..model import transforms
from ..timebase import SAMPLES_PER_FRAME

CLEAN = 999999.0  # the official "no noise" SNR
OFFICIAL_SNRS = (-5.0, 0.0, 5.0, 10.0, 15.0, 20.0, CLEAN)
# Beyond +-200 dB the noise's scale 10 ** (snr / 10) leaves float range (or divides by zero): no mix means that.
SNR_LIMIT_DB = 200.0


def check_snr(snr_db: float, name: str = "snr_db") -> None:
    """Raise a UsageError unless ``snr_db`` can be mixed: finite and within +-:data:`SNR_LIMIT_DB`, or :data:`CLEAN`."""
    if snr_db != CLEAN and not (finite_number(snr_db) and abs(snr_db) <= SNR_LIMIT_DB):
        shown = f"{snr_db:g}" if isinstance(snr_db, int | float) else repr(snr_db)
        raise UsageError(f"{parameter(name)} {shown}: give a finite SNR from -{SNR_LIMIT_DB:g} to {SNR_LIMIT_DB:g} dB")


@dataclass(frozen=True)
class Augmentation:
    """What training does to each clip; ``Augmentation.off()`` feeds clips exactly as evaluation does."""

    noise_files: tuple[Path, ...] = ()
    snrs: tuple[float, ...] = OFFICIAL_SNRS
    audio_mask: tuple[int, int] | None = (6400, 16000)  # (longest span + 1, stride) in samples
    video_mask: tuple[int, int] | None = (10, 25)  # in frames
    random_crop: bool = True

    def __post_init__(self) -> None:
        for snr in self.snrs:
            check_snr(snr, "snrs")

    @classmethod
    def off(cls) -> Augmentation:
        return cls(snrs=(CLEAN,), audio_mask=None, video_mask=None, random_crop=False)


def time_mask(x: torch.Tensor, window: int, stride: int, rng: np.random.Generator) -> torch.Tensor:
    """Zero about one span per ``stride`` steps along dim 0, each shorter than ``window``.

    As upstream, two lengths are drawn per span: the first only bounds where it may start (and a zero
    first draw skips the span), the second is its length.
    """
    masked = x.clone()
    length = len(x)
    for _ in range(-(-length // stride)):
        bound, span = rng.integers(0, window, size=2)
        if bound == 0 or length - bound <= 0:
            continue
        start = int(rng.integers(0, length - bound))
        masked[start : start + int(span)] = 0
    return masked


def mix_noise(audio: torch.Tensor, noise: np.ndarray, snr_db: float, rng: np.random.Generator) -> torch.Tensor:
    """``audio`` plus a random stretch of ``noise`` (looped if shorter) scaled to ``snr_db`` (signal energy over
    noise energy, as torchaudio's add_noise); the clean SNR returns ``audio`` unchanged."""
    if snr_db >= CLEAN or not len(audio):
        return audio
    if len(noise) < len(audio):
        noise = np.tile(noise, -(-len(audio) // len(noise)))
    start = int(rng.integers(0, len(noise) - len(audio) + 1))
    piece = torch.from_numpy(np.ascontiguousarray(noise[start : start + len(audio)], dtype=np.float32))
    noise_energy = float(piece.double().square().sum())
    if noise_energy == 0.0:
        return audio
    scale = (float(audio.double().square().sum()) / (noise_energy * 10 ** (snr_db / 10))) ** 0.5
    return audio + scale * piece


class NoiseBank:
    """Noise recordings, decoded once to 16 kHz mono (any format ffmpeg reads)."""

    def __init__(self, files: tuple[Path, ...] | list[Path]):
        from ..media.decode import load_audio

        self.noises = [load_audio(Path(file)) for file in files]
        for file, noise in zip(files, self.noises):
            if not len(noise):
                raise ValueError(f"{file}: the noise file has no audio")

    def __bool__(self) -> bool:
        return bool(self.noises)

    def add(self, audio: torch.Tensor, snr_db: float, rng: np.random.Generator) -> torch.Tensor:
        noise = self.noises[int(rng.integers(0, len(self.noises)))]
        return mix_noise(audio, noise, snr_db, rng)


def train_audio(
    audio: np.ndarray, video_frames: int | None, options: Augmentation, noise: NoiseBank | None, rng: np.random.Generator
) -> torch.Tensor:
    """A clip's waveform as training feeds it to Whisper: cut/padded to the video (every task, as upstream in
    training), masked, noised and standardised."""
    waveform = torch.as_tensor(audio, dtype=torch.float32)
    if video_frames is not None:
        waveform = transforms.cut_or_pad(waveform, video_frames * SAMPLES_PER_FRAME)
    if options.audio_mask:
        waveform = time_mask(waveform, *options.audio_mask, rng)
    if noise:
        waveform = noise.add(waveform, float(rng.choice(options.snrs)), rng)
    return transforms.standardise(waveform)


def train_video(frames: np.ndarray, options: Augmentation, rng: np.random.Generator) -> torch.Tensor:
    """(T, 96, 96, 3) uint8 crops -> (T, 1, 88, 88) normalised, with a random window and time masks."""
    if not options.random_crop:
        video = transforms.grey(transforms.scaled_crop(frames, *transforms.centre(frames)))
    else:
        height, width = frames.shape[1:3]
        top, left = int(rng.integers(0, height - transforms.CROP + 1)), int(rng.integers(0, width - transforms.CROP + 1))
        video = transforms.grey(transforms.scaled_crop(frames, top, left))
    if options.video_mask:
        video = time_mask(video, *options.video_mask, rng)
    return transforms.normalise(video)
