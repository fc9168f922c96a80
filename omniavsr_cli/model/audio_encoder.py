"""The Whisper encoder (whisper-medium.en shape by default), fed exactly as the official model feeds it.

Each utterance is standardised (transforms.standardise), turned into an 80-bin log-mel padded to the encoder's window (30 s) by
``transformers.WhisperFeatureExtractor`` (identical to what the official code computed), encoded, and cut to
the number of 50 Hz frames the official arithmetic keeps (transforms.kept_audio_frames). The module names
are transformers' Whisper names, which the official checkpoint uses too (``audio_encoder.layers.0...``).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import WhisperConfig, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from ..timebase import SAMPLE_RATE
from .config import WhisperEncoderConfig


def whisper_config(config: WhisperEncoderConfig) -> WhisperConfig:
    return WhisperConfig(
        num_mel_bins=config.num_mel_bins,
        d_model=config.d_model,
        encoder_layers=config.encoder_layers,
        encoder_attention_heads=config.encoder_attention_heads,
        encoder_ffn_dim=config.encoder_ffn_dim,
        max_source_positions=config.max_source_positions,
        decoder_layers=1,
        decoder_attention_heads=config.encoder_attention_heads,
    )


class AudioEncoder(nn.Module):
    """Standardised 16 kHz waveforms -> Whisper features (B, T, D) at 50 Hz, T = the longest kept length."""

    def __init__(self, config: WhisperEncoderConfig, attn_implementation: str = "sdpa"):
        super().__init__()
        whisper = whisper_config(config)
        whisper._attn_implementation = attn_implementation
        self.encoder = WhisperEncoder(whisper)
        self.feature_extractor = WhisperFeatureExtractor(
            feature_size=config.num_mel_bins, sampling_rate=SAMPLE_RATE, chunk_length=config.window_seconds
        )

    def log_mel(self, waveforms: list[torch.Tensor]) -> torch.Tensor:
        """(B, mel bins, 2 x window): every utterance padded (or cut) to the encoder's window (30 s in the released
        model, as Whisper was trained), in 100 Hz mel frames."""
        arrays = [waveform.detach().float().cpu().numpy() for waveform in waveforms]
        features = self.feature_extractor(arrays, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        return features

    def forward(self, waveforms: list[torch.Tensor], kept_frames: list[int]) -> torch.Tensor:
        parameter = next(self.encoder.parameters())
        mel = self.log_mel(waveforms).to(device=parameter.device, dtype=parameter.dtype)
        hidden = self.encoder(mel).last_hidden_state
        return hidden[:, : max(kept_frames)]
