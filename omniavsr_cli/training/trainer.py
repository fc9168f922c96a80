"""``omniavsr train``: the official Omni-AVSR recipe (omni-avsr.md §5), resumable and distributed.

One optimiser step = ``accumulate`` batches. For each batch: load and augment its clips, draw one audio and
one video rate (``random.choice``, uniform), encode audio and video once, run the ASR, VSR and AVSR passes
with their adapters, and back-propagate (1·L_ASR + 1.5·L_VSR + 1·L_AVSR) / 3 (weights configurable), times
the official factor 2 / (clips in the batch over all processes) (see RECIPE_PROCESSES). AdamW (betas 0.9/0.98, weight decay 0.1, eps 1e-8)
on every trainable tensor, cosine decay per step after an optional linear warmup, gradient norm clipped to 10.

Reproducible and resumable: every random draw of a batch (rates, augmentation, dropout) is seeded from
(seed, epoch, position), and the epoch's batch order from (seed, epoch). A run killed at any point and
started again with the same command continues from its last checkpoint and ends with the same weights.

Distributed: started with ``torchrun``/``accelerate launch``, each process takes every WORLD_SIZE-th batch
of the epoch and DistributedDataParallel averages the gradients (NCCL on GPUs, gloo on CPUs); on GPUs the
video encoder's BatchNorm is synchronised as upstream.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import pickle
import random
import resource
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ExitCode, InputError, OmniAVSRError
from ..model.config import TASKS
from ..model.loading import BaseModel, first_line, load_state, overlay
from . import checkpoints
from .augment import Augmentation, NoiseBank, train_audio, train_video
from .data import BadExample, Example, check_files, clip_cache, epoch_order, frame_batches, load_example, read_manifest

log = logging.getLogger("omniavsr")

LOG_FILE = "train_log.jsonl"
SKIPPED_FILE = "skipped.tsv"
FINAL_MODEL = "model"
# The official step multiplies the loss by world_size / (clips in the batch over all processes), and the
# released models were trained on 2 GPUs. Using 2 whatever the number of processes gives exactly the recipe's
# gradients on 2 GPUs, and N processes with b clips each the same result as one process with N*b clips
# (AdamW is nearly blind to the scale; its eps and the gradient clipping are not).
RECIPE_PROCESSES = 2
# Settings that may change between a run and its resumption without changing the result.
NOT_PART_OF_THE_RUN = ("output", "cache", "workers", "log_every", "device", "keep_last", "average_last", "save_every", "partial_model")


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
    log_every: int = 10
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


# ---------------------------------------------------------------------------------------------- schedule


def cosine_schedule(warmup: int, total: int) -> Callable[[int], float]:
    """The learning-rate factor at an optimiser step: linear warmup, then a half cosine to zero at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    return factor


def draw_rates(audio_rates: tuple[int, ...], video_rates: tuple[int, ...], seed: int, epoch: int, position: int) -> tuple[int, int]:
    """One audio and one video rate for a batch, uniformly, as the official ``random.choice``; seeded by the
    batch's place, so every process (and a resumed run) draws the same."""
    draw = random.Random(f"{seed}:rates:{epoch}:{position}")
    return draw.choice(audio_rates), draw.choice(video_rates)


def weighted_loss(losses: dict, weights: tuple[float, float, float]):
    """The official objective: (w_ASR·L_ASR + w_VSR·L_VSR + w_AVSR·L_AVSR) / 3 (a task of weight 0 is not computed)."""
    return sum(weight * losses[task] for task, weight in zip(TASKS, weights) if weight) / 3


def trained_tasks(weights: tuple[float, float, float]) -> tuple[str, ...]:
    """The tasks whose loss counts. A task of weight 0 is not run at all, nor an encoder no task needs: a
    demo model learns ASR first at a fraction of the cost (docs/synth-corpus.md)."""
    return tuple(task for task, weight in zip(TASKS, weights) if weight)


# ---------------------------------------------------------------------------------------------- data


class EpochBatches(torch.utils.data.Dataset):
    """The batches one process trains on in one epoch, each loaded, augmented and padded on demand."""

    def __init__(self, examples: list[Example], batches: list[list[int]], epoch: int, options: TrainOptions, tokenizer, tokens):
        self.examples, self.batches, self.epoch, self.options = examples, batches, epoch, options
        self.tokenizer, self.tokens = tokenizer, tokens
        self.noise: NoiseBank | None = None

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, position: int) -> dict:
        if self.noise is None:  # decoded in the worker that needs it, once
            self.noise = NoiseBank(self.options.augmentation.noise_files)
        audios, videos, texts, skipped = [], [], [], []
        for index in self.batches[position]:
            example = self.examples[index]
            try:
                audio, crops = load_example(example, self.options.cache)
            except BadExample as error:
                skipped.append((example.id, str(error)))
                continue
            rng = np.random.default_rng([self.options.seed, self.epoch, index])
            videos.append(train_video(crops, self.options.augmentation, rng))
            audios.append(train_audio(audio, len(crops), self.options.augmentation, self.noise, rng))
            ids = self.tokenizer(example.text, add_special_tokens=False).input_ids
            texts.append([self.tokens.bos, *ids, self.tokens.eos])
        return {"position": position, "skipped": skipped, **(pad_batch(audios, videos, texts, self.tokens.pad) if texts else {})}


def pad_batch(audios: list[torch.Tensor], videos: list[torch.Tensor], texts: list[list[int]], pad_id: int) -> dict:
    """The official collate: zeros after shorter waveforms and clips, the pad id after shorter transcripts."""
    audio = torch.nn.utils.rnn.pad_sequence(audios, batch_first=True)
    video = torch.nn.utils.rnn.pad_sequence(videos, batch_first=True)
    text = torch.nn.utils.rnn.pad_sequence([torch.tensor(t) for t in texts], batch_first=True, padding_value=pad_id)
    return {"audio": audio, "video": video, "text": text}


# ---------------------------------------------------------------------------------------------- processes


@dataclass
class Processes:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_processes(device: str | None) -> Processes:
    """Join the process group torchrun / accelerate describe in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Processes()
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    on_gpu = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if on_gpu:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if on_gpu else "gloo")
    return Processes(dist.get_rank(), dist.get_world_size(), local_rank)


def _all_sum(value: torch.Tensor, processes: Processes) -> torch.Tensor:
    if processes.world > 1:
        import torch.distributed as dist

        dist.all_reduce(value)
    return value


# ---------------------------------------------------------------------------------------------- training


def train(options: TrainOptions, on_step: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Run (or resume) the training ``options`` describe; ``on_step(step, record)`` follows each optimiser step."""
    from ..model.loading import default_device_and_dtype, load_model

    if any(weight < 0 for weight in options.task_weights) or not trained_tasks(options.task_weights):
        raise InputError(
            f"--task-weights {','.join(map(str, options.task_weights))}: give three weights (ASR,VSR,AVSR), none negative, at least one above 0"
        )
    options = dataclasses.replace(options, cache=clip_cache(options.cache))
    processes = start_processes(options.device)
    output = Path(options.output)
    examples, skipped = _usable_examples(options)
    batches = frame_batches([e.frames for e in examples], options.max_frames, options.buckets)
    per_process = math.ceil(len(batches) / processes.world)
    steps_per_epoch = math.ceil(per_process / options.accumulate)
    total = options.max_steps or options.epochs * steps_per_epoch

    device = options.device or (f"cuda:{processes.local_rank}" if torch.cuda.is_available() else "cpu")
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32, "auto": None}[options.precision]
    device, dtype = default_device_and_dtype(device, dtype)
    model = load_model(options.model, device=str(device), dtype=dtype)
    for asked, kind, offered in zip(options.rates or (), ("audio", "video"), (model.config.audio_rates, model.config.video_rates)):
        if not set(asked) <= set(offered):
            raise InputError(
                f"--rates: {kind} rate {','.join(map(str, sorted(set(asked) - set(offered))))} is not one of this model's ({','.join(map(str, offered))})"
            )
    if model.tokenizer is None:
        raise InputError(f"{options.model}: this model has no tokenizer to turn transcripts into labels; import it with --tokenizer")
    base = checkpoints.base_reference(options.model, model.directory, output)
    model.freeze_backbones(options.unfreeze)
    model.train()
    if processes.world > 1 and device.type == "cuda":
        model.video_encoder = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model.video_encoder)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=options.lr, betas=options.betas, eps=options.eps, weight_decay=options.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_schedule(options.warmup_steps, total))

    step, resumed_from = 0, None
    existing = checkpoints.step_checkpoints(output)
    if existing:
        step = resumed_from = _resume(existing[-1], options, model, optimizer, scheduler)
    elif processes.main:
        output.mkdir(parents=True, exist_ok=True)
    if processes.main:
        _write_skipped(output / SKIPPED_FILE, skipped)
        _trim_log(output / LOG_FILE, step)
        log.info(
            "training %s: %d examples (%d skipped), %d batches, %d steps per epoch, %d steps, %s parameters trained%s",
            model.directory,
            len(examples),
            len(skipped),
            len(batches),
            steps_per_epoch,
            total,
            f"{sum(p.numel() for p in parameters):,}",
            f", resuming after step {step}" if resumed_from else "",
        )

    network = model
    if processes.world > 1:
        network = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    logger = _Logger(output, processes.main, options.log_every)
    previous: dict = {}
    skipped_later = 0
    tokens = model.config.tokens
    with _StopSignal() as stop:
        while step < total:
            epoch, group = divmod(step, steps_per_epoch)
            mine = _process_batches(epoch_order(batches, epoch, options.seed), processes)
            data = EpochBatches(examples, mine, epoch, options, model.tokenizer, tokens)
            first = group * options.accumulate
            loader = torch.utils.data.DataLoader(
                torch.utils.data.Subset(data, range(first, len(mine))),
                batch_size=None,
                num_workers=options.workers,
                worker_init_fn=_leave_signals_to_the_trainer,
            )
            groups = _grouped(iter(loader), options.accumulate, len(mine) - first)
            for batch_group in groups:
                if step >= total:
                    break
                record = _optimiser_step(network, model, batch_group, epoch, options, processes, parameters, optimizer, scheduler, previous)
                step += 1
                skipped_later += record["skipped"]
                record |= {"step": step, "epoch": epoch}
                logger.log(record, step, total)
                stopping = stop.requested(processes)
                if step % options.save_every == 0 or step == total or stopping:
                    _save(output, step, model, base, options, optimizer, scheduler, processes)
                if on_step is not None:
                    on_step(step, record)
                if stopping:
                    logger.close()
                    raise OmniAVSRError(
                        f"interrupted after step {step} of {total}, saved in {output / checkpoints.checkpoint_name(step)}; "
                        "rerun the same command to go on",
                        code="E_INTERRUPTED",
                        exit_code=ExitCode.INTERRUPTED,
                    )

    final = output / FINAL_MODEL
    if processes.main:
        _write_final(output, final, model, base, options)
    if processes.world > 1:
        torch.distributed.barrier()
    logger.close()
    return TrainResult(step, final, logger.last_losses, len(skipped) + skipped_later, resumed_from)


def _usable_examples(options: TrainOptions) -> tuple[list[Example], list[tuple[str, str]]]:
    manifest = check_files(read_manifest(options.manifest, options.root))
    examples = []
    for example in manifest.examples:
        if example.audio is None:
            manifest.skipped.append((example.id, "no audio: the ASR and AVSR passes need it"))
        else:
            examples.append(example)
    if not examples:
        raise InputError(f"{options.manifest}: none of its clips can be trained on (see the reasons in {SKIPPED_FILE})")
    for where, why in manifest.skipped[:5]:
        log.warning("skipped %s: %s", where, why)
    return examples, manifest.skipped


def _process_batches(order: list[list[int]], processes: Processes) -> list[list[int]]:
    """This process's share of the epoch: every WORLD_SIZE-th batch, the list first extended by wrapping round
    so that every process takes as many steps (DistributedSampler's padding)."""
    needed = math.ceil(len(order) / processes.world) * processes.world
    padded = (order * math.ceil(needed / len(order)))[:needed]
    return padded[processes.rank :: processes.world]


def _grouped(batches, size: int, count: int):
    """Consecutive groups of ``size`` batches (the last group of an epoch may be smaller)."""
    group = []
    for _ in range(count):
        group.append(next(batches))
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


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
) -> dict:
    """Forward and backward over a group of batches, then one clipped AdamW step. ``previous`` keeps the last
    usable batch: a batch whose clips were all unusable is replaced by it with a zero weight, so that every
    process still takes part in the gradient exchange."""
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
        with network.no_sync() if processes.world > 1 and not last else contextlib.nullcontext(), _out_of_memory(batch):
            losses = network(batch["audio"], batch["video"], batch["text"], rates, tasks)
            clips = _all_sum(torch.tensor(weight * len(batch["text"])), processes)
            loss = weighted_loss(losses, options.task_weights) * (weight * RECIPE_PROCESSES / max(float(clips), 1.0)) / len(group)
            loss.backward()
        if weight:
            for task in tasks:
                totals[task] += float(losses[task].detach())
            used += 1
            llm_tokens += _sequence_tokens(model, batch, rates, tasks)
    for _, why in skipped:
        log.warning("skipped %s", why)
    norm = torch.nn.utils.clip_grad_norm_(parameters, options.clip_norm)
    record = {"lr": scheduler.get_last_lr()[0]}
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    means = {task: totals[task] / max(used, 1) for task in tasks}
    mean = _all_sum(torch.tensor([means[t] for t in tasks], dtype=torch.float64), processes) / processes.world
    losses = dict(zip(tasks, mean.tolist()))
    seconds = time.perf_counter() - started
    return record | {
        "loss": weighted_loss(losses, options.task_weights),
        **{f"loss_{task}": value for task, value in losses.items()},
        "grad_norm": float(norm),
        "tokens_per_s": llm_tokens * processes.world / seconds,
        "seconds": seconds,
        "memory_gb": _memory_gb(),
        "skipped": len(skipped),
    }


@contextlib.contextmanager
def _out_of_memory(batch: dict):
    try:
        yield
    except torch.OutOfMemoryError:
        rows, frames = batch["video"].shape[:2]
        raise OmniAVSRError(
            f"out of memory on a batch of {rows} clips of up to {frames / 25:.1f} s; lower --max-frames "
            "(and raise --accumulate to keep the batch the recipe's size)",
            code="E_OUT_OF_MEMORY",
            exit_code=ExitCode.OUT_OF_MEMORY,
        ) from None


def _sequence_tokens(model, batch: dict, rates: tuple[int, int], tasks: tuple[str, ...]) -> int:
    """LLM positions a batch's passes process (padding included)."""
    from ..model.config import TASK_ADAPTER
    from ..model.omni import TASK_MODALITIES

    rows, text = batch["text"].shape
    block = {"audio": model.kept_audio_frames(batch["audio"].shape[1]) // rates[0] + 2, "video": batch["video"].shape[1] // rates[1] + 2}
    return rows * sum(
        text + sum(block[m] for m in TASK_MODALITIES[task]) + getattr(model, f"prompt_{TASK_ADAPTER[task]}").shape[1] for task in tasks
    )


class _StopSignal:
    """Ctrl-C or SIGTERM (a scheduler pre-empting the job) ends training after the current step, with a
    checkpoint; a second Ctrl-C stops at once."""

    def __init__(self):
        self.flag = False
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self.previous[number] = signal.signal(number, self._handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def _handle(self, number, frame) -> None:
        if self.flag and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.flag = True
        log.warning("stopping after this step (Ctrl-C again to stop at once)")

    def requested(self, processes: Processes) -> bool:
        """Whether any process was asked to stop (all of them stop at the same step)."""
        return bool(_all_sum(torch.tensor(float(self.flag)), processes) > 0)


def _leave_signals_to_the_trainer(worker: int) -> None:
    """Loader workers ignore Ctrl-C and SIGTERM: the trainer decides when to stop, and stops them."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)


def _memory_gb() -> float:
    """Peak memory so far: the GPU's allocator on CUDA, the process's resident set on a CPU."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ---------------------------------------------------------------------------------------------- state


def _tokenizer(model) -> Path | None:
    return model.directory if (model.directory / "tokenizer.json").is_file() else None


def _save(output: Path, step: int, model, base: BaseModel, options: TrainOptions, optimizer, scheduler, processes: Processes) -> None:
    if processes.main:
        state = {"step": step, "settings": options.settings(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
        checkpoints.save_checkpoint(
            output / checkpoints.checkpoint_name(step), model.config, checkpoints.changed_state(model), base, _tokenizer(model), state
        )
        checkpoints.keep_last(output, max(options.keep_last, options.average_last))
    if processes.world > 1:
        torch.distributed.barrier()


def _resume(path: Path, options: TrainOptions, model, optimizer, scheduler) -> int:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    state = _training_state(path / checkpoints.TRAINING_STATE)
    settings = options.settings()
    changed = sorted(name for name in settings if state["settings"].get(name) != settings[name])
    if changed:
        raise InputError(
            f"{options.output} holds a run with other settings (changed: {', '.join(changed)}); rerun its command to resume it, "
            "or train into a new --output"
        )
    try:
        checkpoints.load_changed_state(model, load_file(str(path / "model.safetensors")))
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


def _damaged(path: Path, problem: str) -> OmniAVSRError:
    return OmniAVSRError(
        f"{path}: {problem}; delete that checkpoint directory to resume from the one before it (or start over), "
        "or train into a new --output",
        code="E_CHECKPOINT",
        exit_code=ExitCode.MODEL_UNAVAILABLE,
    )


def _write_final(output: Path, final: Path, model, base: BaseModel, options: TrainOptions) -> None:
    """The average of the last checkpoints: complete (every tensor, loads anywhere) unless a partial model,
    which needs its base to load, was asked for."""
    chosen = checkpoints.step_checkpoints(output)[-max(1, options.average_last) :]
    averaged = checkpoints.average_states(chosen)
    if options.partial_model:
        checkpoints.save_checkpoint(final, model.config, averaged, base, _tokenizer(model))
    else:
        checkpoints.save_checkpoint(final, model.config, overlay(load_state(model.directory), averaged), None, _tokenizer(model))
    log.info("final model (average of %s): %s", ", ".join(p.name for p in chosen), final)


def _write_skipped(path: Path, skipped: list[tuple[str, str]]) -> None:
    path.write_text("".join(f"{where}\t{why}\n" for where, why in skipped), encoding="utf-8")


def _trim_log(path: Path, step: int) -> None:
    """Drop log records of steps after ``step``: a resumed run logs them again."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if line and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


class _Logger:
    """Per-step records to OUT/train_log.jsonl, every ``every`` steps a line on stderr, and TensorBoard
    (OUT/tensorboard) when it is installed. Only the main process logs."""

    def __init__(self, output: Path, main: bool, every: int):
        self.main, self.every = main, max(1, every)
        self.last_losses: dict[str, float] = {}
        self.file = (output / LOG_FILE).open("a", encoding="utf-8") if main else None
        self.board = None
        if main:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.board = SummaryWriter(str(output / "tensorboard"))
            except ImportError:
                pass

    def log(self, record: dict, step: int, total: int) -> None:
        self.last_losses = {task: record[f"loss_{task}"] for task in TASKS if f"loss_{task}" in record}
        if not self.main:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.board is not None:
            for name, value in record.items():
                if name not in ("step", "epoch"):
                    self.board.add_scalar(f"train/{name}", value, step)
        if step % self.every == 0 or step == total:
            print(
                f"step {step}/{total} epoch {record['epoch'] + 1} loss {record['loss']:.4f} "
                f"({' '.join(f'{task} {value:.4f}' for task, value in self.last_losses.items())}) "
                f"lr {record['lr']:.2e} {record['tokens_per_s']:.0f} tok/s {record['memory_gb']:.1f} GB",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.board is not None:
            self.board.close()
