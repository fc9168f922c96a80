"""What the encoders are fed, exactly as the official data pipeline prepares it (omni-avsr.md §1.2, §12).

Video: 96x96 RGB mouth crops (uint8) -> x/255 -> centre 88x88 -> grey with torchvision's weights
(0.2989, 0.587, 0.114; they sum to 0.9999) -> (x - 0.421) / 0.165, in that order.
Audio: 16 kHz mono -> (AVSR: cut or zero-pad to 640 samples per video frame) -> standardised over the whole
utterance (zero mean, unit variance, eps 1e-8; padding included, as upstream) -> Whisper log-mel.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..timebase import SAMPLE_RATE

CROP = 88
GREY_WEIGHTS = (0.2989, 0.587, 0.114)
VIDEO_MEAN, VIDEO_STD = 0.421, 0.165
SAMPLES_PER_AUDIO_FRAME = 320  # Whisper's encoder runs at 50 Hz
MAX_AUDIO_FRAMES = 1500  # 30 s, the released encoder's window


def video_input(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB crops -> (T, 1, 88, 88) float32, normalised as the model was trained."""
    return normalise(grey(scaled_crop(frames, *centre(frames))))


def centre(frames: np.ndarray | torch.Tensor) -> tuple[int, int]:
    """(top, left) of the centred 88x88 window (torchvision's CenterCrop rounding)."""
    height, width = np.shape(frames)[1:3]
    return int(round((height - CROP) / 2.0)), int(round((width - CROP) / 2.0))


def scaled_crop(frames: np.ndarray | torch.Tensor, top: int, left: int) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> the 88x88 window at (top, left) as (T, 3, 88, 88) floats in [0, 1]."""
    video = torch.as_tensor(np.asarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    return video[..., top : top + CROP, left : left + CROP]


def grey(video: torch.Tensor) -> torch.Tensor:
    """(T, 3, H, W) -> (T, 1, H, W) with torchvision's Grayscale weights."""
    red, green, blue = video.unbind(dim=1)
    return (GREY_WEIGHTS[0] * red + GREY_WEIGHTS[1] * green + GREY_WEIGHTS[2] * blue).unsqueeze(1)


def normalise(video: torch.Tensor) -> torch.Tensor:
    return (video - VIDEO_MEAN) / VIDEO_STD


def cut_or_pad(waveform: torch.Tensor, samples: int) -> torch.Tensor:
    """Truncate or zero-pad the end of a 1-D waveform to ``samples`` (AVSR: 640 per video frame)."""
    if len(waveform) >= samples:
        return waveform[:samples]
    return F.pad(waveform, (0, samples - len(waveform)))


def standardise(waveform: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance over the whole utterance (the official ``layer_norm`` with eps 1e-8, no affine)."""
    waveform = waveform.float()
    return F.layer_norm(waveform, waveform.shape, eps=1e-8)


def kept_audio_frames(samples: int, rule: str = "bf16", minimum: int = 25, maximum: int = MAX_AUDIO_FRAMES) -> int:
    """How many 50 Hz Whisper frames an utterance of ``samples`` keeps.

    The official count is ``int(tensor(samples) / 16000 * 50)`` computed in torch's default dtype, which was
    bfloat16 when the released weights were trained and evaluated: e.g. 480,000 samples give 1504 (then
    capped at 1500) and 67,840 give 211 in float32 where floor(S/320) is 212. ``rule`` picks "bf16",
    "float32" or "exact" (floor). At least ``minimum`` frames are kept, at most ``maximum`` (the encoder's window).
    """
    if rule == "exact":
        count = samples // SAMPLES_PER_AUDIO_FRAME
    else:
        dtype = {"bf16": torch.bfloat16, "float32": torch.float32}[rule]
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            count = int(torch.tensor(samples) / SAMPLE_RATE * 50)
        finally:
            torch.set_default_dtype(previous)
    return min(max(count, minimum), maximum)
