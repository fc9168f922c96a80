"""The whole Omni-AVSR model: both encoders, the per-rate projectors, the prompts and the LLM with Omni-LoRA.

Attribute names follow the official ``AVSR_LLMs`` so its checkpoint keys map onto ours one for one:
``audio_encoder``, ``video_encoder``, ``audio_proj``, ``video_proj``, ``llm`` and the ``prompt_*`` buffers.
"""

from __future__ import annotations

import torch
from torch import nn

from .audio_encoder import AudioEncoder
from .compression import RateProjectors
from .config import OmniAVSRConfig
from .llm import build_llm
from .video_encoder import VideoEncoder


class OmniAVSR(nn.Module):
    def __init__(self, config: OmniAVSRConfig, attn_implementation: str = "sdpa"):
        super().__init__()
        self.config = config
        hidden = config.llm.hidden_size
        self.audio_encoder = AudioEncoder(config.whisper, attn_implementation)
        self.video_encoder = VideoEncoder(config.avhubert, attn_implementation)
        projector = dict(hidden_size=config.projector_hidden_size, output_size=hidden, mode=config.compression, layernorm=config.projector_layernorm)
        self.audio_proj = RateProjectors(config.audio_rates, config.whisper.d_model, **projector)
        self.video_proj = RateProjectors(config.video_rates, config.avhubert.hidden_size, **projector)
        self.llm = build_llm(config, attn_implementation)
        # The released prompt embeddings live in the checkpoint (they equal embed_tokens(prompt ids) there).
        for task in ("audio", "video", "audiovisual"):
            self.register_buffer(f"prompt_{task}", torch.zeros(1, 0, hidden))
        self.freeze_backbones()

    def freeze_backbones(self) -> None:
        """Train only what Omni-AVSR trains: the LLM LoRA, the AV-HuBERT LoRA and the projectors."""
        for name, parameter in self.named_parameters():
            parameter.requires_grad = "lora_" in name or name.startswith(("audio_proj.", "video_proj."))

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
