"""``omniavsr train``: fine-tune (or train) Omni-AVSR on prep-lips data with the official recipe."""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError, UsageError
from ._common import check_device
from ._errors import reports_errors

HELP = (
    "Train Omni-AVSR's adapters and projectors on a prep-lips manifest (manifest.csv or .jsonl) with the paper's "
    "recipe: one audio and one video rate drawn per batch, the ASR, VSR and AVSR passes each with its LoRA, loss "
    "(1*ASR + 1.5*VSR + 1*AVSR)/3, AdamW lr 1e-3 with cosine decay, batches of at most 60 s of video. Checkpoints "
    "(OUT/checkpoint-N, loadable with --model) hold only what training changed and name the model they started from "
    "(by installed name, or by a path relative to themselves); rerunning the same command resumes a killed run. "
    "OUT/model is the final model (the average of the last --average-last checkpoints), complete: copy it anywhere. Several GPUs: "
    "torchrun --nproc-per-node N -m omniavsr_cli train ...\n\n"
    "Exit codes: 0 done; 2 bad arguments or data; 5 model unavailable; 6 out of memory; 130 interrupted (a "
    "checkpoint was saved: rerun to go on). Guide: docs/train.md."
)
PRECISIONS = ("auto", "bf16", "fp32")


def _numbers(option: str, value: str, count: int | None, kind=float) -> tuple:
    try:
        numbers = tuple(kind(part) for part in value.split(","))
    except ValueError:
        numbers = ()
    if not numbers or (count is not None and len(numbers) != count):
        raise UsageError(f"{option} {value}: give {count or 'some'} comma-separated numbers")
    return numbers


def _snrs(value: str) -> tuple[float, ...]:
    from ..training.augment import CLEAN

    return tuple(CLEAN if part.strip() == "clean" else _numbers("--snrs", part, 1)[0] for part in value.split(","))


def _rate_lists(value: str | None) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    if value is None:
        return None
    parts = value.split("/")
    if len(parts) != 2:
        raise UsageError(f"--rates {value}: give the audio and the video rates split by '/', e.g. 4/2 or 4,16/2,5")
    return _numbers("--rates", parts[0], None, int), _numbers("--rates", parts[1], None, int)


def options_unfreeze(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else ()


@reports_errors
def train(
    manifest: Annotated[
        Path, typer.Argument(help="Training manifest written by prep-lips (.csv: the Omni-AVSR 5 columns, or .jsonl).", show_default=False)
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Run directory: checkpoints, logs, the final model. Rerun to resume.", show_default=False)
    ],
    model: Annotated[str, typer.Option(help="Model to start from: an installed name or a model directory.")] = "omni-avsr-st",
    root: Annotated[
        Path | None,
        typer.Option(help="Data root the manifest's paths are relative to (default: the manifest's grandparent).", show_default=False),
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the data (the paper: 8).")] = 8,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many optimiser steps (the schedule ends there).", show_default=False)
    ] = None,
    max_frames: Annotated[
        int, typer.Option(min=1, help="Video frames (25 per second) per batch per process (the paper: 1500 = 60 s).")
    ] = 1500,
    lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate.")] = 1e-3,
    warmup_steps: Annotated[int, typer.Option(min=0, help="Linear warmup steps before the cosine decay (the paper: none).")] = 0,
    weight_decay: Annotated[float, typer.Option(min=0.0, help="AdamW weight decay.")] = 0.1,
    clip_norm: Annotated[float, typer.Option(min=0.0, help="Gradient norm clipping.")] = 10.0,
    task_weights: Annotated[str, typer.Option(help="Loss weights of ASR,VSR,AVSR.")] = "1,1.5,1",
    rates: Annotated[
        str | None,
        typer.Option(
            help="Train only these of the model's rates, AUDIO,VIDEO lists split by '/', e.g. 4/2 (default: all, drawn per batch).",
            show_default=False,
        ),
    ] = None,
    accumulate: Annotated[int, typer.Option(min=1, help="Batches per optimiser step (gradient accumulation).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the data order, rates, augmentation and dropout.")] = 7,
    unfreeze: Annotated[
        str | None,
        typer.Option(help="Also train these whole modules: comma list of audio-encoder, video-encoder, llm.", show_default=False),
    ] = None,
    noise: Annotated[
        list[Path] | None, typer.Option(help="Noise recording mixed into the audio (repeatable), e.g. babble.", show_default=False)
    ] = None,
    snrs: Annotated[
        str, typer.Option(help="SNRs in dB one is drawn from per clip when --noise is given ('clean' = none).")
    ] = "-5,0,5,10,15,20,clean",
    augment: Annotated[
        bool, typer.Option("--augment/--no-augment", help="Time masking and random crops (the recipe's augmentation).")
    ] = True,
    precision: Annotated[str, typer.Option(help="auto (bf16 on GPU as the paper, fp32 on CPU), bf16 or fp32.")] = "auto",
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N (default: cuda when available).", show_default=False)] = None,
    workers: Annotated[int, typer.Option(min=0, help="Processes loading and augmenting batches.")] = 2,
    cache: Annotated[
        Path | None,
        typer.Option(
            help="Keep decoded clips here (about 1.7 MB per 2.3-s clip) so later epochs, stages and runs skip decoding.", show_default=False
        ),
    ] = None,
    log_every: Annotated[
        int, typer.Option(min=1, help="Print a progress line every N steps (every step goes to OUT/train_log.jsonl).")
    ] = 10,
    save_every: Annotated[int, typer.Option(min=1, help="Checkpoint every N steps (and at the end).")] = 1000,
    keep_last: Annotated[int, typer.Option(min=1, help="Checkpoints kept.")] = 2,
    average_last: Annotated[int, typer.Option(min=1, help="The final model averages the last K checkpoints.")] = 1,
    partial_model: Annotated[
        bool,
        typer.Option(
            "--partial-model",
            help="Write OUT/model with only the tensors training changed (far smaller for the released "
            "models); it then needs the model it started from to load (default: complete, loads anywhere).",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")] = False,
) -> int:
    from ..model.omni import BACKBONES
    from ..training.augment import Augmentation
    from ..training.progress import SKIPPED_FILE
    from ..training.trainer import TrainOptions
    from ..training.trainer import train as run

    unknown = [name for name in options_unfreeze(unfreeze) if name not in BACKBONES]
    if unknown:
        raise UsageError(f"--unfreeze {','.join(unknown)}: choose from {', '.join(BACKBONES)}")
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
    check_device(device)
    if not manifest.is_file():
        raise InputError(f"{manifest}: no such manifest; prep-lips --manifest writes one")
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a directory; choose another --output")
    for file in noise or []:
        if not file.is_file():
            raise InputError(f"--noise {file}: no such file")
    augmentation = Augmentation(noise_files=tuple(noise or ()), snrs=_snrs(snrs))
    if not augment:
        augmentation = dataclasses.replace(augmentation, audio_mask=None, video_mask=None, random_crop=False)
    options = TrainOptions(
        manifest=manifest,
        output=output,
        model=model,
        root=root,
        epochs=epochs,
        max_steps=max_steps,
        max_frames=max_frames,
        lr=lr,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        clip_norm=clip_norm,
        task_weights=_numbers("--task-weights", task_weights, 3),
        rates=_rate_lists(rates),
        accumulate=accumulate,
        seed=seed,
        unfreeze=options_unfreeze(unfreeze),
        augmentation=augmentation,
        precision=precision,
        device=device,
        workers=workers,
        cache=cache,
        save_every=save_every,
        keep_last=keep_last,
        average_last=average_last,
        partial_model=partial_model,
    )
    logging.basicConfig(stream=sys.stderr, format="omniavsr: %(message)s", level=logging.WARNING if quiet else logging.INFO)
    result = run(options, on_step=None if quiet else _progress_line(log_every))
    if not quiet:
        losses = " ".join(f"{task} {value:.4f}" for task, value in result.losses.items())
        print(
            f"train: {result.steps} steps done (last losses: {losses}); {result.skipped} examples skipped ({output / SKIPPED_FILE}); "
            f"final model: {result.model}",
            file=sys.stderr,
        )
    return 0


def _progress_line(every: int):
    """on_step for train: a line on stderr every ``every`` steps and at the last."""

    def show(step: int, total: int, record: dict) -> None:
        if step % every and step != total:
            return
        losses = " ".join(f"{name.removeprefix('loss_')} {value:.4f}" for name, value in record.items() if name.startswith("loss_"))
        print(
            f"step {step}/{total} epoch {record['epoch'] + 1} loss {record['loss']:.4f} ({losses}) "
            f"lr {record['lr']:.2e} {record['tokens_per_s']:.0f} tok/s {record['memory_gb']:.1f} GB",
            file=sys.stderr,
            flush=True,
        )

    return show
