"""Random-weight models in the native format: for benchmarks at real size and for demos without weights.

Built with the same classes and saved with the same ``save_native`` as a real model, so everything
downstream (load_model, transcribe, bench) runs unchanged; only the numbers are meaningless. The
tokenizer is word-level (``w0``, ``w1``, ...) with the special tokens at the ids the config names.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from .config import OmniAVSRConfig
from .loading import LoadedModel, save_native

# A few real words first, so a random model's output looks like text rather than only w123 w45.
WORDS = "the a and to of in is it that you we they this what was for on are with be have not do at so".split()


def small_config(vocab_size: int = 300) -> OmniAVSRConfig:
    """A few-MB model with the released architecture's shape (all modules, both rate pairs, ST LoRA)."""
    base = vocab_size - 50
    tokens = {
        "bos": base,
        "eos": base + 1,
        "pad": base + 45,
        "audio_start": base + 46,
        "audio_end": base + 47,
        "video_start": base + 48,
        "video_end": base + 49,
    }
    return OmniAVSRConfig.from_dict(
        {
            "variant": "ST",
            "lora_reduction": 16,
            "projector_hidden_size": 48,
            "tokens": tokens,
            "whisper": {"d_model": 32, "encoder_layers": 2, "encoder_attention_heads": 2, "encoder_ffn_dim": 64},
            "avhubert": {
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "intermediate_size": 64,
                "resnet_width": 8,
                "num_conv_pos_embeddings": 16,
                "num_conv_pos_embedding_groups": 4,
            },
            "llm": {
                "vocab_size": vocab_size,
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
            },
        }
    )


def word_tokenizer(config: OmniAVSRConfig, words: tuple[str, ...] | list[str] = WORDS):
    """A fast word-level tokenizer covering the config's vocabulary, special tokens where the config puts them:
    ``words`` first, then ``w<id>`` fillers; an unknown word reads as the first word."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    ids = config.tokens
    special = {
        "<|begin_of_text|>": ids.bos,
        "<|end_of_text|>": ids.eos,
        "<pad>": ids.pad,
        "<audio>": ids.audio_start,
        "</audio>": ids.audio_end,
        "<video>": ids.video_start,
        "</video>": ids.video_end,
    }
    taken = set(special.values())
    free = [i for i in range(config.llm.vocab_size) if i not in taken]
    if len(words) > len(free):
        raise ValueError(f"{len(words)} words do not fit in a vocabulary of {config.llm.vocab_size} with {len(special)} special tokens")
    vocab = {(words[n] if n < len(words) else f"w{i}"): i for n, i in enumerate(free)} | special
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=next(iter(vocab))))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<pad>",
        additional_special_tokens=["<audio>", "</audio>", "<video>", "</video>"],
    )


def random_model(config: OmniAVSRConfig, seed: int = 0, words: tuple[str, ...] | list[str] = WORDS) -> LoadedModel:
    """An OmniAVSR with N(0, 0.02) matrices, unit norms and zero biases, LoRA included (so the adapters act).

    Built on the meta device and filled in place: a 2.3-billion-parameter model takes seconds, not the
    minutes of each module's own initialiser.
    """
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    from .omni import OmniAVSR

    with torch.device("meta"):
        model = OmniAVSR(config, attn_implementation="sdpa")
    model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.ndim >= 2:
                parameter.normal_(0.0, 0.02, generator=generator)
            elif name.endswith("bias"):
                parameter.zero_()
            else:
                parameter.fill_(1.0)
        for name, buffer in model.named_buffers():
            buffer.fill_(1.0 if name.endswith("running_var") else 0.0)
    model.llm.model.rotary_emb = LlamaRotaryEmbedding(config=model.llm.config)
    model.llm.tie_weights()
    tokenizer = word_tokenizer(config, words)
    model.set_prompts_from_tokenizer(tokenizer)
    return LoadedModel(model.eval(), tokenizer)


def save_random_model(directory: Path, config: OmniAVSRConfig, seed: int = 0, words: tuple[str, ...] | list[str] = WORDS) -> Path:
    """Write a random model in the native format (weights, config, tokenizer, checksums): the starting point of a
    model trained from scratch (weights/demo) as well as a stand-in for benchmarks and tests."""
    model = random_model(config, seed, words)
    with tempfile.TemporaryDirectory() as scratch:
        model.tokenizer.save_pretrained(scratch)
        return save_native(Path(directory), config, model.module.state_dict(), tokenizer=Path(scratch))
