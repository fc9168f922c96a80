"""The demo model's shape and starting point: the released architecture (same classes) at a size this CPU
trains in about an hour, with a word-level tokenizer over the GRID vocabulary. tools/make_demo_model.sh trains
it into weights/demo; docs/synth-corpus.md says how."""

from __future__ import annotations

from pathlib import Path

from ..model.config import OmniAVSRConfig
from ..model.random_init import save_random_model
from .grammar import VOCABULARY

VOCAB_SIZE = 64
WINDOW_SECONDS = 6  # the audio encoder's window: a GRID sentence is 1.5-3 s; longer input is chunked by the VAD
LONGEST_CHUNK_SECONDS = 4.0  # a training clip holds one sentence, at most about 3.5 s of speech


def demo_config() -> OmniAVSRConfig:
    base = VOCAB_SIZE - 7
    tokens = {
        "bos": base,
        "eos": base + 1,
        "pad": base + 2,
        "audio_start": base + 3,
        "audio_end": base + 4,
        "video_start": base + 5,
        "video_end": base + 6,
    }
    return OmniAVSRConfig.from_dict(
        {
            "variant": "ST",
            "lora_reduction": 16,
            "longest_chunk_seconds": LONGEST_CHUNK_SECONDS,
            "projector_hidden_size": 128,
            "tokens": tokens,
            "whisper": {
                "d_model": 128,
                "encoder_layers": 2,
                "encoder_attention_heads": 4,
                "encoder_ffn_dim": 512,
                "max_source_positions": 50 * WINDOW_SECONDS,
            },
            "avhubert": {
                "hidden_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "intermediate_size": 512,
                "resnet_width": 8,
                "num_conv_pos_embeddings": 16,
                "num_conv_pos_embedding_groups": 4,
            },
            "llm": {
                "vocab_size": VOCAB_SIZE,
                "hidden_size": 128,
                "intermediate_size": 384,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
            },
        }
    )


def demo_words() -> list[str]:
    return list(VOCABULARY) + sorted({word for prompt in OmniAVSRConfig().prompts.values() for word in prompt.split()})


def init_demo_model(directory: Path, seed: int = 0) -> Path:
    """The untrained demo model in the native format, for ``omniavsr train --model``.

    Every matrix is N(0, 0.02) (random_init), except Whisper's two input convolutions, which get He
    initialisation. With 0.02 they shrink the log-mel about 30-fold before the first LayerNorm, so the
    position embeddings carry most of the encoder's output. That alone does not make the audio learnable:
    the recipe's ASR-only first stage does (docs/synth-corpus.md). The released Whisper needs no such care:
    it is loaded trained.
    """
    import torch

    from ..model.loading import load_state, save_native

    directory = save_random_model(Path(directory), demo_config(), seed, demo_words())
    state = load_state(directory)
    generator = torch.Generator().manual_seed(seed)
    for name in ("audio_encoder.encoder.conv1.weight", "audio_encoder.encoder.conv2.weight"):
        weight = state[name]
        fan_in = weight.shape[1] * weight.shape[2]
        state[name] = torch.randn(weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5
    return save_native(directory, demo_config(), state)  # the tokenizer files are already there
