"""``omniavsr train``: the official Omni-AVSR recipe (omni-avsr.md §5), resumable and distributed.

One optimiser step = ``accumulate`` batches. For each batch: load and augment its clips, draw one audio and
one video rate (``random.choice``, uniform), encode audio and video once, run the ASR, VSR and AVSR passes
with their adapters, and back-propagate (1·L_ASR + 1.5·L_VSR + 1·L_AVSR) / 3 (weights configurable), times
the official factor 2 / (clips in the batch over all processes) (see recipe.RECIPE_PROCESSES). AdamW (betas 0.9/0.98, weight decay 0.1, eps 1e-8)
on every trainable tensor, cosine decay per step after an optional linear warmup, gradient norm clipped to 10.

Reproducible and resumable: every random draw of a batch (rates, augmentation, dropout) is seeded from
(seed, epoch, position), and the epoch's batch order from (seed, epoch). A run killed at any point and
started again with the same command continues from its last checkpoint and ends with the same weights.

Distributed: started with ``torchrun``/``accelerate launch``, each process takes every WORLD_SIZE-th batch
of the epoch and DistributedDataParallel averages the gradients (NCCL on GPUs, gloo on CPUs); on GPUs the
video encoder's BatchNorm is synchronised as upstream.

This module holds the run's options and the loop, top to bottom; the rest of a run lives beside it:
recipe.py (rates, objective, schedule), batches.py (what a step trains on), distributed.py (the processes),
checkpoints.py (save, resume, the final model), progress.py (the log and what is printed), stopping.py
(Ctrl-C and SIGTERM).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import InputError, Interrupted, OutOfMemory, UsageError, parameter
from ..model.loading import BaseModel, LoadedModel, default_device_and_dtype, load_model
from . import checkpoints, distributed
from .augment import Augmentation
from .batches import EpochBatches, accumulation_groups
from .data import Example, check_files, clip_cache, epoch_order, frame_batches, read_manifest, writable_directory
from .distributed import Processes
from .progress import LOG_FILE, SKIPPED_FILE, TrainLog, memory_gb, sequence_tokens, trim_log, write_skipped
from .recipe import RECIPE_PROCESSES, cosine_schedule, draw_rates, trained_tasks, weighted_loss
from .stopping import StopSignal, leave_signals_to_the_trainer

log = logging.getLogger("omniavsr")

FINAL_MODEL = "model"
# Settings that may change between a run and its resumption without changing the result.
NOT_PART_OF_THE_RUN = ("output", "cache", "workers", "device", "keep_last", "average_last", "save_every", "partial_model")


@dataclass
class TrainOptions:
    manifest: Path
    output: Path
    model: str  # the model to start from: a name under the weights directory or a model directory
    root: Path | None = None  # the data root the manifest's paths are relative to
    epochs: int = 8
    max_steps: int | None = None  # stop (and end the cosine schedule) after this many optimiser steps
    max_frames: int = 1500  # video frames (25 per second) per batch per process: 60 s, as the recipe
    buckets: int = 400
    lr: float = 1e-3
    warmup_steps: int = 0
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    clip_norm: float = 10.0
    task_weights: tuple[float, float, float] = (1.0, 1.5, 1.0)  # ASR, VSR, AVSR
    rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None  # (audio, video) rates to draw from; None: all the model's
    accumulate: int = 1
    seed: int = 7
    unfreeze: tuple[str, ...] = ()  # model.omni.BACKBONES to train too (a model trained from scratch)
    augmentation: Augmentation = field(default_factory=Augmentation)
    precision: str = "auto"  # "bf16" (the recipe's bf16-true, the default on a GPU) or "fp32" (the default on a CPU)
    device: str | None = None
    workers: int = 2
    cache: Path | None = None  # decoded clips kept here for later epochs and runs (data.load_example)
    save_every: int = 1000
    keep_last: int = 2
    average_last: int = 1  # the final model averages the last K checkpoints
    partial_model: bool = False  # the final model holds only what training changed and names its base

    def settings(self) -> dict:
        """What defines the run: a resumed run must have the same."""
        values = dataclasses.asdict(self)
        for name in NOT_PART_OF_THE_RUN:
            values.pop(name)
        return json.loads(json.dumps(values, default=str))


@dataclass
class TrainResult:
    steps: int
    model: Path  # the final (averaged) model directory
    losses: dict[str, float]  # the last logged per-task losses
    skipped: int  # examples left out, with reasons in OUT/skipped.tsv
    resumed_from: int | None = None


def train(options: TrainOptions, on_step: Callable[[int, int, dict], None] | None = None) -> TrainResult:
    """Run (or resume) the training ``options`` describe; ``on_step(step, total_steps, record)`` follows each
    optimiser step in the main process (``record`` is the step's line of train_log.jsonl)."""
    if not (math.isfinite(options.lr) and options.lr > 0):  # an infinite rate writes NaN weights and exits 0
        raise UsageError(f"{parameter('lr')} {options.lr}: give a finite learning rate above 0 (the recipe's is 1e-3)")
    if not all(math.isfinite(weight) and weight >= 0 for weight in options.task_weights) or not trained_tasks(options.task_weights):
        raise UsageError(
            f"{parameter('task_weights')} {','.join(map(str, options.task_weights))}: give three weights (ASR,VSR,AVSR), none negative, "
            "at least one above 0"
        )
    output = writable_directory(options.output, "output")
    options = dataclasses.replace(options, cache=clip_cache(options.cache))
    processes = distributed.start_processes(options.device)
    examples, skipped = _usable_examples(options)
    batches = frame_batches([e.frames for e in examples], options.max_frames, options.buckets)
    per_process = math.ceil(len(batches) / processes.world)
    steps_per_epoch = math.ceil(per_process / options.accumulate)
    total = options.max_steps or options.epochs * steps_per_epoch

    device = distributed.rank_device(options.device, processes)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32, "auto": None}[options.precision]
    device, dtype = default_device_and_dtype(device, dtype)
    loaded = load_model(options.model, device=str(device), dtype=dtype)
    model = loaded.module
    for asked, kind, offered in zip(options.rates or (), ("audio", "video"), (model.config.audio_rates, model.config.video_rates)):
        if not set(asked) <= set(offered):
            raise UsageError(
                f"{parameter('rates')}: {kind} rate {','.join(map(str, sorted(set(asked) - set(offered))))} is not one of this model's ({','.join(map(str, offered))})"
            )
    if loaded.tokenizer is None:
        raise InputError(
            f"{options.model}: this model has no tokenizer to turn transcripts into labels; import it with {parameter('tokenizer')}"
        )
    base = checkpoints.base_reference(options.model, loaded.directory, output)
    model.freeze_backbones(options.unfreeze)
    model.train()
    distributed.synchronise_batch_norm(model, device, processes)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=options.lr, betas=options.betas, eps=options.eps, weight_decay=options.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_schedule(options.warmup_steps, total))

    step, resumed_from = 0, None
    existing = checkpoints.step_checkpoints(output)
    if existing:
        step = resumed_from = checkpoints.resume(existing[-1], options.output, options.settings(), model, optimizer, scheduler)
    if processes.main:
        write_skipped(output / SKIPPED_FILE, skipped)
        trim_log(output / LOG_FILE, step)
        log.info(
            "training %s: %d examples (%d skipped), %d batches, %d steps per epoch, %d steps, %s parameters trained%s",
            loaded.directory,
            len(examples),
            len(skipped),
            len(batches),
            steps_per_epoch,
            total,
            f"{sum(p.numel() for p in parameters):,}",
            f", resuming after step {step}" if resumed_from else "",
        )

    network = distributed.data_parallel(model, processes)
    logger = TrainLog(output, processes.main)
    previous: dict = {}
    skipped_later: dict[str, str] = {}  # a clip that cannot be loaded is met again every epoch: reported once
    tokens = model.config.tokens
    with StopSignal() as stop:
        while step < total:
            epoch, group = divmod(step, steps_per_epoch)
            mine = distributed.process_batches(epoch_order(batches, epoch, options.seed), processes)
            data = EpochBatches(examples, mine, epoch, options, loaded.tokenizer, tokens)
            first = group * options.accumulate
            loader = torch.utils.data.DataLoader(
                torch.utils.data.Subset(data, range(first, len(mine))),
                batch_size=None,
                num_workers=options.workers,
                worker_init_fn=leave_signals_to_the_trainer,
            )
            groups = accumulation_groups(iter(loader), options.accumulate, len(mine) - first)
            for batch_group in groups:
                if step >= total:
                    break
                record, bad = _optimiser_step(
                    network, model, batch_group, epoch, options, processes, parameters, optimizer, scheduler, previous
                )
                step += 1
                _report_skipped(bad, skipped_later, skipped, output, processes)
                record |= {"step": step, "epoch": epoch}
                logger.log(record, step)
                stopping = stop.requested(processes)
                if step % options.save_every == 0 or step == total or stopping:
                    _save(output, step, loaded, base, options, optimizer, scheduler, processes)
                if on_step is not None and processes.main:
                    on_step(step, total, record)
                if stopping:
                    logger.close()
                    raise Interrupted(
                        f"interrupted after step {step} of {total}, saved in {output / checkpoints.checkpoint_name(step)}; "
                        "rerun the same command to go on"
                    )

    final = output / FINAL_MODEL
    if processes.main:
        checkpoints.write_final(output, final, loaded, base, options.average_last, options.partial_model)
    distributed.barrier(processes)
    logger.close()
    return TrainResult(step, final, logger.last_losses, len(skipped) + len(skipped_later), resumed_from)


def _usable_examples(options: TrainOptions) -> tuple[list[Example], list[tuple[str, str]]]:
    manifest = check_files(read_manifest(options.manifest, options.root))
    examples = []
    for example in manifest.examples:
        if example.audio is None:
            manifest.skipped.append((example.id, "no audio: the ASR and AVSR passes need it"))
        else:
            examples.append(example)
    if not examples:
        reasons = "; ".join(f"{where}: {why}" for where, why in manifest.skipped[:3])
        more = f"; and {len(manifest.skipped) - 3} more" if len(manifest.skipped) > 3 else ""
        raise InputError(f"{options.manifest}: none of its clips can be trained on ({reasons}{more})")
    for where, why in manifest.skipped[:5]:
        log.warning("skipped %s: %s", where, why)
    return examples, manifest.skipped


def _report_skipped(
    bad: list[tuple[str, str]], later: dict[str, str], before: list[tuple[str, str]], output: Path, processes: Processes
) -> None:
    """Warn of the clips of a step that could not be loaded, each the first time only, and add them to
    OUT/skipped.tsv after those known before training."""
    new = {where: why for where, why in bad if where not in later}
    if not new:
        return
    for why in new.values():
        log.warning("skipped %s", why)
    later |= new
    if processes.main:
        write_skipped(output / SKIPPED_FILE, before + list(later.items()))


def _optimiser_step(
    network,
    model,
    group: list[dict],
    epoch: int,
    options: TrainOptions,
    processes: Processes,
    parameters,
    optimizer,
    scheduler,
    previous: dict,
) -> tuple[dict, list[tuple[str, str]]]:
    """Forward and backward over a group of batches, then one clipped AdamW step: the step's record and the
    clips of its batches that could not be loaded. ``previous`` keeps the last usable batch: a batch whose clips
    were all unusable is replaced by it with a zero weight, so that every process still takes part in the
    gradient exchange."""
    started = time.perf_counter()
    tasks = trained_tasks(options.task_weights)
    totals = {task: 0.0 for task in tasks}
    llm_tokens, used = 0, 0
    skipped = [item for batch in group for item in batch["skipped"]]
    for number, batch in enumerate(group):
        weight = 1.0
        if "text" in batch:
            previous["batch"] = batch
        elif "batch" in previous:
            batch, weight = previous["batch"], 0.0
        else:
            continue
        rates = draw_rates(*(options.rates or (model.config.audio_rates, model.config.video_rates)), options.seed, epoch, batch["position"])
        torch.manual_seed(random.Random(f"{options.seed}:torch:{epoch}:{batch['position']}:{processes.rank}").getrandbits(63))
        last = number == len(group) - 1
        with distributed.no_sync_unless_last(network, processes, last), _out_of_memory(batch):
            losses = network(batch["audio"], batch["video"], batch["text"], rates, tasks)
            clips = distributed.all_sum(torch.tensor(weight * len(batch["text"])), processes)
            loss = weighted_loss(losses, options.task_weights) * (weight * RECIPE_PROCESSES / max(float(clips), 1.0)) / len(group)
            loss.backward()
        if weight:
            for task in tasks:
                totals[task] += float(losses[task].detach())
            used += 1
            llm_tokens += sequence_tokens(model, batch, rates, tasks)
    norm = torch.nn.utils.clip_grad_norm_(parameters, options.clip_norm)
    record = {"lr": scheduler.get_last_lr()[0]}
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    means = {task: totals[task] / max(used, 1) for task in tasks}
    mean = distributed.all_sum(torch.tensor([means[t] for t in tasks], dtype=torch.float64), processes) / processes.world
    losses = dict(zip(tasks, mean.tolist()))
    seconds = time.perf_counter() - started
    return record | {
        "loss": weighted_loss(losses, options.task_weights),
        **{f"loss_{task}": value for task, value in losses.items()},
        "grad_norm": float(norm),
        "tokens_per_s": llm_tokens * processes.world / seconds,
        "seconds": seconds,
        "memory_gb": memory_gb(),
        "skipped": len(skipped),
    }, skipped


@contextlib.contextmanager
def _out_of_memory(batch: dict):
    try:
        yield
    except torch.OutOfMemoryError:
        rows, frames = batch["video"].shape[:2]
        raise OutOfMemory(
            f"out of memory on a batch of {rows} clips of up to {frames / 25:.1f} s; lower {parameter('max_frames')} "
            f"(and raise {parameter('accumulate')} to keep the batch the recipe's size)"
        ) from None


def _save(
    output: Path, step: int, model: LoadedModel, base: BaseModel, options: TrainOptions, optimizer, scheduler, processes: Processes
) -> None:
    """A checkpoint of this step, written by the main process while the others wait."""
    if processes.main:
        keep = max(options.keep_last, options.average_last)
        checkpoints.save_step(output, step, model, base, options.settings(), optimizer, scheduler, keep)
    distributed.barrier(processes)
