"""Llama-3.2-1B with Omni-LoRA, expressed exactly with peft (omni-avsr.md §4, addendum 8).

LoRA sits on ``q_proj`` and ``v_proj`` of every layer, bottleneck = hidden / reduction (64) and scaling =
alpha / reduction (0.125), no dropout. The three variants are sets of named peft adapters:

- S: one adapter, ``shared``, used for every task;
- T: one adapter per task, ``audio`` (ASR), ``video`` (VSR), ``audiovisual`` (AVSR), the official names;
- ST: the task's adapter and ``shared`` active together, their deltas summed under the same scaling.

The adapters are injected into a stock ``LlamaForCausalLM`` (no peft wrapper), so parameter names read
``model.layers.0.self_attn.q_proj.lora_A.audio.weight`` and the base weight ``...q_proj.base_layer.weight``.
"""

from __future__ import annotations

import warnings

from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from transformers import LlamaConfig, LlamaForCausalLM

from .config import TASK_ADAPTER, OmniAVSRConfig

SHARED = "shared"


def llama_config(config: OmniAVSRConfig) -> LlamaConfig:
    llm = config.llm
    return LlamaConfig(
        vocab_size=llm.vocab_size,
        hidden_size=llm.hidden_size,
        intermediate_size=llm.intermediate_size,
        num_hidden_layers=llm.num_hidden_layers,
        num_attention_heads=llm.num_attention_heads,
        num_key_value_heads=llm.num_key_value_heads,
        max_position_embeddings=llm.max_position_embeddings,
        rms_norm_eps=llm.rms_norm_eps,
        rope_theta=llm.rope_theta,
        rope_scaling=llm.rope_scaling,
        tie_word_embeddings=llm.tie_word_embeddings,
        bos_token_id=config.tokens.bos,
        eos_token_id=config.tokens.eos,
        pad_token_id=config.tokens.pad,
    )


def adapter_names(variant: str) -> list[str]:
    """The peft adapters a variant holds, in the official module order."""
    tasks = list(TASK_ADAPTER.values())
    return {"S": [SHARED], "T": tasks, "ST": [*tasks, SHARED]}[variant]


def task_adapters(variant: str, task: str) -> list[str]:
    """The adapters active for ``task`` ("asr", "vsr", "avsr")."""
    return {"S": [SHARED], "T": [TASK_ADAPTER[task]], "ST": [TASK_ADAPTER[task], SHARED]}[variant]


def lora_config(config: OmniAVSRConfig) -> LoraConfig:
    rank = config.lora_rank
    return LoraConfig(
        r=rank,
        lora_alpha=config.lora_scaling * rank,
        target_modules=["q_proj", "v_proj"],
        lora_dropout=0.0,
        bias="none",
        use_rslora=False,
    )


def build_llm(config: OmniAVSRConfig, attn_implementation: str = "sdpa") -> LlamaForCausalLM:
    """A Llama of the configured shape (random weights until loaded) carrying the variant's adapters."""
    llm = LlamaForCausalLM(llama_config(config))
    llm.config._attn_implementation = attn_implementation
    with warnings.catch_warnings():  # peft warns that a second adapter is being added: that is the design
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")
        for name in adapter_names(config.variant):
            inject_adapter_in_model(lora_config(config), llm, adapter_name=name)
    activate(llm, config.variant, "avsr")
    return llm


def activate(llm: LlamaForCausalLM, variant: str, task: str) -> None:
    """Make ``task``'s adapters the active ones. Which parameters train is left as it was (peft's
    set_adapter would freeze the other tasks' adapters, which training switches between in one step)."""
    names = task_adapters(variant, task)
    trainable = {name: parameter.requires_grad for name, parameter in llm.named_parameters() if "lora_" in name}
    for module in llm.modules():
        if isinstance(module, LoraLayer):
            module.set_adapter(names)
    for name, parameter in llm.named_parameters():
        if name in trainable:
            parameter.requires_grad = trainable[name]
