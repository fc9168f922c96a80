"""Training checkpoints: native model directories holding only what training changed, plus resume state.

``OUT/checkpoint-0001000/`` is a model directory ``load_model`` (and so transcribe and eval) reads directly:
``model.safetensors`` holds the trained tensors (LoRA, projectors, AV-HuBERT LoRA and BatchNorm statistics,
whatever ``--unfreeze`` added), the prompt embeddings and the added tokens' embedding rows, and names its
base model in its metadata (``BaseModel``: an installed name or a path relative to the checkpoint, and the
base's checksum); ``config.json`` and the tokenizer are copied. The run's final model is complete by default. ``training.pt`` beside them holds
the optimiser and scheduler state and the run's settings, for resuming; it is loaded with
``weights_only=True`` (tensors and plain values, never a pickled object, which could run code). A checkpoint
is written under a ``.part`` name and renamed when complete, so a run killed while saving leaves the previous
one intact.

This module owns the files: a run's step checkpoints and their pruning (``save_step``), resuming from the
last one (``resume``), the final model averaged over the last ones (``write_final``), and the reference to
the base model (``base_reference``).
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import warnings
from pathlib import Path

import torch

from ..atomic import PART
from ..errors import InputError, ModelUnavailable, parameter
from ..model.loading import (
    ADDED_IDS,
    ADDED_ROWS,
    EMBEDDINGS,
    TIED,
    BaseModel,
    LoadedModel,
    first_line,
    load_state,
    overlay,
    save_native,
    weights_sha256,
)

log = logging.getLogger("omniavsr")

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
    partial = path.with_name(path.name + PART)  # a whole directory: made beside, renamed when complete
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


# ---------------------------------------------------------------------------------------------- a run's checkpoints


def save_step(output: Path, step: int, model: LoadedModel, base: BaseModel, settings: dict, optimizer, scheduler, keep: int) -> None:
    """OUT/checkpoint-STEP: what training changed and the state to resume from; then only the last ``keep``
    checkpoints are kept."""
    state = {"step": step, "settings": settings, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    save_checkpoint(output / checkpoint_name(step), model.config, changed_state(model.module), base, _tokenizer(model), state)
    keep_last(output, keep)


def resume(path: Path, output: Path, settings: dict, model, optimizer, scheduler) -> int:
    """Load the checkpoint ``path`` of the run in ``output`` into the model, optimiser and scheduler, which
    must be those of a run with the same ``settings``; returns its step."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    state = _training_state(path / TRAINING_STATE)
    changed = sorted(name for name in settings if state["settings"].get(name) != settings[name])
    if changed:
        raise InputError(
            f"{output} holds a run with other settings (changed: {', '.join(changed)}); rerun its command to resume it, "
            f"or train into a new {parameter('output')}"
        )
    try:
        load_changed_state(model, load_file(str(path / "model.safetensors")))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    except (SafetensorError, OSError, KeyError, TypeError, ValueError, RuntimeError) as error:
        raise _damaged(path, f"does not fit this run ({first_line(error)})") from None
    log.info("resuming from %s", path)
    return state["step"]


def _training_state(file: Path) -> dict:
    """training.pt, loaded as tensors and plain values only: a pickled object (which could run code on
    loading) is refused, not run."""
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it was not written with
            warnings.simplefilter("ignore")
            state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise _damaged(
            file.parent, f"{file.name} is damaged or holds more than tensors and plain values (never loaded: they could run code)"
        ) from None
    except Exception as error:  # torch raises many kinds for damaged files
        raise _damaged(file.parent, f"{file.name} is unreadable ({first_line(error)})") from None
    if (
        not isinstance(state, dict)
        or not {"step", "settings", "optimizer", "scheduler"} <= set(state)
        or not isinstance(state["settings"], dict)
    ):
        raise _damaged(file.parent, f"{file.name} is not a training state")
    return state


def _damaged(path: Path, problem: str) -> ModelUnavailable:
    return ModelUnavailable(
        f"{path}: {problem}; delete that checkpoint directory to resume from the one before it (or start over), "
        f"or train into a new {parameter('output')}",
        code="E_CHECKPOINT",
    )


def write_final(output: Path, final: Path, model: LoadedModel, base: BaseModel, average_last: int, partial: bool) -> None:
    """The average of the last ``average_last`` checkpoints: complete (every tensor, loads anywhere) unless
    ``partial``, which needs its base to load."""
    chosen = step_checkpoints(output)[-max(1, average_last) :]
    averaged = average_states(chosen)
    if partial:
        save_checkpoint(final, model.config, averaged, base, _tokenizer(model))
    else:
        save_checkpoint(final, model.config, overlay(load_state(model.directory), averaged), None, _tokenizer(model))
    log.info("final model (average of %s): %s", ", ".join(p.name for p in chosen), final)


def _tokenizer(model: LoadedModel) -> Path | None:
    return model.directory if (model.directory / "tokenizer.json").is_file() else None
