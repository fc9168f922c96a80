"""Training checkpoints: native model directories holding only what training changed, plus resume state.

``OUT/checkpoint-0001000/`` is a model directory ``load_model`` (and so transcribe and eval) reads directly:
``model.safetensors`` holds the trained tensors (LoRA, projectors, AV-HuBERT LoRA and BatchNorm statistics,
whatever ``--unfreeze`` added), the prompt embeddings and the added tokens' embedding rows, and names its
base model in its metadata (``BaseModel``: an installed name or a path relative to the checkpoint, and the
base's checksum); ``config.json`` and the tokenizer are copied. The run's final model is complete by default. ``training.pt`` beside them holds
the optimiser and scheduler state and the run's settings, for resuming. A checkpoint is written under a
``.part`` name and renamed when complete, so a run killed while saving leaves the previous one intact.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from ..model.loading import ADDED_IDS, ADDED_ROWS, EMBEDDINGS, TIED, BaseModel, save_native, weights_sha256

PREFIX = "checkpoint-"
TRAINING_STATE = "training.pt"


def changed_state(model) -> dict[str, torch.Tensor]:
    """The tensors a training run may change, on the CPU: trainable parameters, the video encoder's BatchNorm
    statistics (it trains in train mode, as upstream), the prompt embeddings and the added tokens' rows."""
    state = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    state |= {
        name: b.detach()
        for name, b in model.named_buffers()
        if name.startswith("video_encoder.") and ("running_" in name or "num_batches" in name)
    }
    state |= {name: b.detach() for name, b in model.named_buffers() if name.startswith("prompt_")}
    if EMBEDDINGS not in state:
        tokens = model.config.tokens
        ids = torch.tensor([tokens.pad, tokens.audio_start, tokens.audio_end, tokens.video_start, tokens.video_end])
        state[ADDED_IDS] = ids
        state[ADDED_ROWS] = model.llm.get_input_embeddings().weight.detach()[ids.to(model.llm.device)]
    state.pop(TIED, None)
    return {name: tensor.cpu() for name, tensor in state.items()}


def base_reference(model: str, directory: Path, output: Path) -> BaseModel:
    """How the checkpoints of a run in ``output`` name the model it started from (``model`` as the user gave
    it, found in ``directory``): an installed model by its name, a model directory by its path relative to a
    checkpoint (they all sit one level below ``output``)."""
    if (Path(model) / "config.json").is_file():
        reference = Path(os.path.relpath(Path(directory).resolve(), (Path(output) / PREFIX).resolve())).as_posix()
    else:
        reference = model
    return BaseModel(reference, weights_sha256(Path(directory)))


def save_checkpoint(
    path: Path, config, state: dict[str, torch.Tensor], base: BaseModel | None, tokenizer: Path | None, training_state: dict | None = None
) -> Path:
    """Write ``state`` as a model directory, completely or not at all: the changed tensors (``changed_state``)
    on ``base``, or every tensor when ``base`` is None."""
    path = Path(path)
    partial = path.with_name(path.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    save_native(partial, config, state, tokenizer=tokenizer, base=base)
    if training_state is not None:
        torch.save(training_state, partial / TRAINING_STATE)
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)
    return path


def step_checkpoints(output: Path) -> list[Path]:
    """Complete checkpoints in ``output``, oldest first."""
    found = [p for p in Path(output).glob(f"{PREFIX}*") if p.is_dir() and p.name[len(PREFIX) :].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:07d}"


def keep_last(output: Path, count: int) -> None:
    for old in step_checkpoints(output)[:-count] if count > 0 else []:
        shutil.rmtree(old)


def average_states(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of checkpoints' trained tensors; integer tensors (BatchNorm batch counts, token
    ids) are combined with floor division, as the official averaging does."""
    from safetensors.torch import load_file

    states = [load_file(str(Path(p) / "model.safetensors")) for p in paths]
    averaged = {}
    for name, first in states[0].items():
        if first.is_floating_point():
            averaged[name] = (sum(state[name].double() for state in states) / len(states)).to(first.dtype)
        else:
            averaged[name] = sum(state[name] for state in states) // len(states)
    return averaged


def load_changed_state(model, state: dict[str, torch.Tensor]) -> None:
    """Put a checkpoint's tensors (``changed_state``) back into a model built from its base."""
    state = dict(state)
    if ADDED_ROWS in state:
        ids, rows = state.pop(ADDED_IDS), state.pop(ADDED_ROWS)
        weight = model.llm.get_input_embeddings().weight
        with torch.no_grad():
            weight[ids.to(weight.device)] = rows.to(weight)
    current = dict(model.named_parameters()) | dict(model.named_buffers())
    unknown = [name for name in state if name not in current]
    if unknown:
        raise ValueError(f"checkpoint tensors this model does not have, e.g. {unknown[0]}")
    with torch.no_grad():
        for name, tensor in state.items():
            if name.startswith("prompt_"):
                setattr(model, name, tensor.to(current[name]))
            else:
                current[name].copy_(tensor)
