"""The native model format and ``load_model``.

A model is a directory: ``config.json`` (OmniAVSRConfig), ``model.safetensors`` (our parameter names; the
LLM's output matrix is tied to its input embeddings and stored once) and, when known, the tokenizer files.
docs/checkpoint-format.md describes it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from ..errors import ExitCode, OmniAVSRError
from ..registry import write_checksums
from ..weights import bundled_dir, weights_dir
from .config import OmniAVSRConfig

WEIGHTS_FILE = "model.safetensors"
TIED = "llm.lm_head.weight"
BASE_KEY = "omniavsr_base"  # safetensors metadata: the model a partial checkpoint applies to
EMBEDDINGS = "llm.model.embed_tokens.weight"
# A partial checkpoint stores the added tokens' embedding rows, not the whole matrix.
ADDED_ROWS, ADDED_IDS = "added_tokens.embeddings", "added_tokens.ids"


def save_native(directory: Path, config: OmniAVSRConfig, state: dict[str, torch.Tensor], tokenizer: Path | None = None, base: str | None = None) -> Path:
    """Write a model directory; with ``base`` (a model name or directory), ``state`` holds only the tensors
    that differ from that model, and loading overlays them on it."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().contiguous() for name, tensor in state.items() if name != TIED}
    partial = directory / (WEIGHTS_FILE + ".part")
    metadata = {"format": "pt", "omniavsr_variant": config.variant} | ({BASE_KEY: base} if base else {})
    save_file(tensors, str(partial), metadata=metadata)
    partial.replace(directory / WEIGHTS_FILE)
    config.save(directory)
    if tokenizer is not None:
        for file in tokenizer.iterdir():
            if file.is_file() and (file.name.startswith("tokenizer") or file.name == "special_tokens_map.json"):
                shutil.copy2(file, directory / file.name)
    write_checksums(directory)
    return directory


def resolve(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if (path / "config.json").is_file():
        return path
    installed = weights_dir() / str(name_or_path)
    if (installed / "config.json").is_file():
        return installed
    bundled = bundled_dir() / str(name_or_path)  # the demo model, even when OMNIAVSR_WEIGHTS points elsewhere
    if (bundled / "config.json").is_file():
        return bundled
    raise OmniAVSRError(
        f"{name_or_path}: no such model (looked for {path}/config.json and {installed}/config.json); "
        "run `omniavsr weights list` to see what is installed",
        code="E_NO_MODEL", exit_code=ExitCode.MODEL_UNAVAILABLE,
    )  # fmt: skip


def default_device_and_dtype(device: str | None, dtype: torch.dtype | None) -> tuple[torch.device, torch.dtype]:
    """bf16 on a GPU (as the released weights were trained), fp32 on CPU (2-4x faster than bf16 there)."""
    chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return chosen, dtype or (torch.bfloat16 if chosen.type == "cuda" else torch.float32)


def load_model(name_or_path: str | Path, device: str | None = None, dtype: torch.dtype | None = None, attn_implementation: str = "sdpa"):
    """The model in ``name_or_path`` (a directory, or a name under the weights directory), ready for inference."""
    from .omni import OmniAVSR

    directory = resolve(name_or_path)
    config = OmniAVSRConfig.load(directory)
    state = load_state(directory)
    target_device, target_dtype = default_device_and_dtype(device, dtype)
    with torch.device("meta"):
        model = OmniAVSR(config, attn_implementation)
    for name in [n for n in state if n.startswith("prompt_")]:  # their length is the prompt's token count
        setattr(model, name, state.pop(name))
    result = model.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in result.missing_keys if k != TIED and not k.startswith("prompt_")]
    if missing or result.unexpected_keys:
        raise OmniAVSRError(
            f"{directory}: weights do not match config.json ({len(missing)} missing, {len(result.unexpected_keys)} unexpected, "
            f"e.g. {(missing + result.unexpected_keys)[0]})", code="E_CHECKPOINT", exit_code=ExitCode.MODEL_UNAVAILABLE,
        )  # fmt: skip
    model.llm.tie_weights()
    # Non-persistent buffers (RoPE frequencies) are not in the file: rebuild them off the meta device.
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    model.llm.model.rotary_emb = LlamaRotaryEmbedding(config=model.llm.config)
    model.freeze_backbones()
    model.tokenizer = load_tokenizer(directory)
    model.directory = directory
    return model.to(device=target_device, dtype=target_dtype).eval()


def load_state(directory: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the model in ``directory``: a partial checkpoint is overlaid on its base model."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = directory / WEIGHTS_FILE
    try:
        with safe_open(str(path), framework="pt") as handle:
            base = (handle.metadata() or {}).get(BASE_KEY)
        state = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise OmniAVSRError(f"{path}: unreadable ({error}); import or download the model again",
                            code="E_CHECKPOINT", exit_code=ExitCode.MODEL_UNAVAILABLE) from None  # fmt: skip
    if base is None:
        return state
    try:
        full = load_state(resolve(base))
    except OmniAVSRError as error:
        raise OmniAVSRError(f"{directory}: this checkpoint holds only the trained tensors and needs its base model {base}, "
                            f"which cannot be loaded ({error})", code="E_CHECKPOINT", exit_code=ExitCode.MODEL_UNAVAILABLE) from None  # fmt: skip
    if ADDED_ROWS in state:
        ids, rows = state.pop(ADDED_IDS), state.pop(ADDED_ROWS)
        if EMBEDDINGS not in state:
            full[EMBEDDINGS] = full[EMBEDDINGS].clone()
            full[EMBEDDINGS][ids] = rows.to(full[EMBEDDINGS].dtype)
    full.update(state)
    return full


def load_tokenizer(directory: Path):
    """The tokenizer saved beside the weights, or None when the model was imported without one."""
    if not (directory / "tokenizer.json").is_file():
        return None
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if (directory / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(directory)
    return PreTrainedTokenizerFast(tokenizer_file=str(directory / "tokenizer.json"))
