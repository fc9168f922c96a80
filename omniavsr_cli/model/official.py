"""Reading the released Omni-AVSR ``.pth`` files (plain ``AVSR_LLMs`` state dicts) into our model's names.

The official keys (omni-avsr.md §4.6) differ from ours only where we use stock classes: Whisper sits under
``audio_encoder.encoder``, AV-HuBERT under ``video_encoder.hubert`` with transformers' HuBERT names, the
projector lists under ``.projectors``, and every LoRA is a peft adapter (``lora_A`` = the official ``down``,
``lora_B`` = ``up``). AV-HuBERT pretraining leftovers that the video path never reads are dropped.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import torch

from ..errors import InputError, ModelUnavailable, parameter
from .config import OmniAVSRConfig

UNUSED_PREFIXES = (
    "video_encoder.mask_emb",
    "video_encoder.final_proj.",
    "video_encoder.label_embs_concat",
    "video_encoder.feature_extractor_audio.",
)

_VIDEO_RENAMES = [
    (r"^feature_extractor_video\.", "feature_extractor."),
    (r"^layer_norm\.", "feature_projection.layer_norm."),
    (r"^post_extract_proj\.", "feature_projection.projection."),
    (r"^encoder\.pos_conv\.0\.weight_g$", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"^encoder\.pos_conv\.0\.weight_v$", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (r"^encoder\.pos_conv\.0\.bias$", "encoder.pos_conv_embed.conv.bias"),
    (r"\.self_attn\.([qv])_proj\.", r".attention.\1_proj.base_layer."),
    (r"\.self_attn\.(k|out)_proj\.", r".attention.\1_proj."),
    (r"\.self_attn\.lora_down_Q\.weight$", ".attention.q_proj.lora_A.default.weight"),
    (r"\.self_attn\.lora_up_Q\.weight$", ".attention.q_proj.lora_B.default.weight"),
    (r"\.self_attn\.lora_down_V\.weight$", ".attention.v_proj.lora_A.default.weight"),
    (r"\.self_attn\.lora_up_V\.weight$", ".attention.v_proj.lora_B.default.weight"),
    (r"\.self_attn_layer_norm\.", ".layer_norm."),
    (r"\.fc1\.", ".feed_forward.intermediate_dense."),
    (r"\.fc2\.", ".feed_forward.output_dense."),
]
_LLM_LORA = re.compile(r"\.self_attn\.lora_(down|up)_([QV])(_shared)?(?:\.(audio|video|audiovisual))?\.weight$")


class CheckpointError(ModelUnavailable):
    """A released checkpoint that is damaged or does not fit the architecture."""

    code = "E_CHECKPOINT"


def official_to_native(key: str) -> str | None:
    """Our name for an official key, or None for keys the model does not use."""
    if key.startswith(UNUSED_PREFIXES):
        return None
    if key.startswith("audio_encoder."):
        return "audio_encoder.encoder." + key[len("audio_encoder.") :]
    for side in ("audio_proj.", "video_proj."):
        if key.startswith(side):
            return side + "projectors." + key[len(side) :]
    if key.startswith("video_encoder."):
        rest = key[len("video_encoder.") :]
        for pattern, replacement in _VIDEO_RENAMES:
            rest = re.sub(pattern, replacement, rest)
        return "video_encoder.hubert." + rest
    if key.startswith("llm."):
        lora = _LLM_LORA.search(key)
        if lora:
            kind, projection, shared, task = lora.groups()
            adapter = "shared" if shared else (task or "shared")
            matrix = "lora_A" if kind == "down" else "lora_B"
            return key[: lora.start()] + f".self_attn.{projection.lower()}_proj.{matrix}.{adapter}.weight"
        return re.sub(r"\.self_attn\.([qv])_proj\.weight$", r".self_attn.\1_proj.base_layer.weight", key)
    return key  # prompt_* buffers


def _shape_fits(name: str, tensor: torch.Tensor, expected: torch.Tensor) -> bool:
    if name.startswith("prompt_"):  # a prompt has as many rows as its tokens
        return tensor.dim() == 3 and tensor.shape[0] == 1 and tensor.shape[2] == expected.shape[2]
    return tensor.shape == expected.shape


def detect_layout(keys: set[str]) -> dict:
    """Variant, number of rates and projector LayerNorm, from the key names alone (omni-avsr.md §11)."""
    if any(k.endswith(".self_attn.lora_down_Q.audio.weight") for k in keys):
        variant = "ST" if any(k.endswith(".self_attn.lora_down_Q_shared.weight") for k in keys) else "T"
    elif any(k.startswith("llm.") and k.endswith(".self_attn.lora_down_Q.weight") for k in keys):
        variant = "S"
    else:
        raise CheckpointError("no LLM LoRA keys (llm.model.layers.N.self_attn.lora_down_Q...): not an Omni-AVSR checkpoint")
    count = lambda side: len({int(m.group(1)) for k in keys if (m := re.match(rf"{side}\.(\d+)\.", k))})  # noqa: E731
    return {
        "variant": variant,
        "audio_projectors": count("audio_proj"),
        "video_projectors": count("video_proj"),
        "projector_layernorm": any(re.match(r"(audio|video)_proj\.\d+\.3\.weight$", k) for k in keys),
    }


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A plain state dict from ``path``, loaded without running any pickled code."""
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file", code="E_NOT_FOUND")
    # torch's own messages for these suggest weights_only=False, which would run whatever the file holds
    fetch = "download the released model_avg_*.pth again from its source"
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a PyTorch zip checkpoint (empty, truncated, or saved in the legacy pre-zip format); {fetch}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: holds pickled Python objects besides tensors, or damaged pickle data; they were refused, never run. "
            f"A released checkpoint holds tensors only: {fetch}"
        ) from None
    except Exception as error:  # torch raises many kinds for damaged files
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint, truncated or corrupt? ({reason}); {fetch}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = {k[len("model.") :] if k.startswith("model.") else k: v for k, v in state["state_dict"].items()}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors (the released model_avg_*.pth)")
    return state


def convert(state: dict[str, torch.Tensor], config: OmniAVSRConfig) -> tuple[OmniAVSRConfig, dict[str, torch.Tensor]]:
    """Map an official state dict onto our model; the config takes the variant, rates and LN from the keys.

    Every missing, unexpected or mis-shaped tensor is reported together in one error.
    """
    from .omni import OmniAVSR

    layout = detect_layout(set(state))
    data = config.to_dict()
    data.update(variant=layout["variant"], projector_layernorm=layout["projector_layernorm"])
    for side, rates in (("audio", config.audio_rates), ("video", config.video_rates)):
        found = layout[f"{side}_projectors"]
        if found != len(rates):
            raise CheckpointError(
                f"the checkpoint has {found} {side} projectors but the config lists {side} rates {list(rates)}; "
                f"pass {parameter('config')} with the {side}_rates it was trained with"
            )
    config = OmniAVSRConfig.from_dict(data)
    with torch.device("meta"):
        expected = OmniAVSR(config).state_dict()
    native, unexpected = {}, []
    for key, tensor in state.items():
        name = official_to_native(key)
        if name is None:
            continue
        if name not in expected:
            unexpected.append(key)
        else:
            native[name] = tensor
    missing = sorted(set(expected) - set(native))
    misshaped = [
        f"{name} {tuple(native[name].shape)} != {tuple(expected[name].shape)}"
        for name in native
        if name in expected and not _shape_fits(name, native[name], expected[name])
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)):
        if items:
            problems.append(f"{len(items)} {label}: {', '.join(items[:5])}{', ...' if len(items) > 5 else ''}")
    if problems:
        raise CheckpointError(
            "the checkpoint does not fit the configured architecture (" + "; ".join(problems) + "); "
            f"is it an Omni-AVSR model_avg_*.pth, and does {parameter('config')} give its sizes?"
        )
    # Some released tensors are stored as integers where the module holds floats (measured on the AV-HuBERT
    # trunk convolutions); everything else keeps its stored dtype (bf16) until the model is loaded.
    for name, tensor in native.items():
        if expected[name].is_floating_point() and not tensor.is_floating_point():
            native[name] = tensor.to(expected[name].dtype)
    return config, native
