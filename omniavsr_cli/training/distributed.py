"""The processes of a distributed run: joining the process group ``torchrun`` / ``accelerate launch`` describe,
each rank's device, its share of an epoch's batches, the gradient exchange (DistributedDataParallel, NCCL on
GPUs, gloo on CPUs, BatchNorm synchronised on GPUs as upstream) and the sums and barriers every process takes
part in. A run without WORLD_SIZE is one process, and every helper here does nothing beyond the local work.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass

import torch


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


def rank_device(device: str | None, processes: Processes) -> str:
    """The device asked for, else this process's GPU (one per local rank), else the CPU."""
    return device or (f"cuda:{processes.local_rank}" if torch.cuda.is_available() else "cpu")


def process_batches(order: list[list[int]], processes: Processes) -> list[list[int]]:
    """This process's share of the epoch: every WORLD_SIZE-th batch, the list first extended by wrapping round
    so that every process takes as many steps (DistributedSampler's padding)."""
    needed = math.ceil(len(order) / processes.world) * processes.world
    padded = (order * math.ceil(needed / len(order)))[:needed]
    return padded[processes.rank :: processes.world]


def synchronise_batch_norm(model, device: torch.device, processes: Processes) -> None:
    """Several GPUs share the video encoder's BatchNorm statistics, as upstream (CPU processes keep their own)."""
    if processes.world > 1 and device.type == "cuda":
        model.video_encoder = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model.video_encoder)


def data_parallel(model, processes: Processes):
    """The network the steps run: ``model`` itself, or wrapped to average its gradients over the processes."""
    if processes.world > 1:
        return torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    return model


def no_sync_unless_last(network, processes: Processes, last: bool):
    """The context of one batch's forward and backward pass: the batches before the last of an optimiser step
    only accumulate their gradients (DDP's ``no_sync``); the last one exchanges them."""
    return network.no_sync() if processes.world > 1 and not last else contextlib.nullcontext()


def all_sum(value: torch.Tensor, processes: Processes) -> torch.Tensor:
    if processes.world > 1:
        import torch.distributed as dist

        dist.all_reduce(value)
    return value


def barrier(processes: Processes) -> None:
    """Every process waits here for the others (the main process writing files the others then rely on)."""
    if processes.world > 1:
        torch.distributed.barrier()
