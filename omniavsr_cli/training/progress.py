"""What a training run records: one record per optimiser step in OUT/train_log.jsonl (trimmed back to the
checkpoint a resumed run starts from, so each step is logged once), TensorBoard scalars in OUT/tensorboard
when it is installed, and the examples left out in OUT/skipped.tsv. Only the main process writes. The
measures in a step's record (peak memory, LLM tokens) are taken here too. What is shown while it runs is
the caller's (train's ``on_step``; the CLI prints a line every few steps).
"""

from __future__ import annotations

import json
import resource
from pathlib import Path

import torch

from ..model.config import TASK_ADAPTER, TASKS

LOG_FILE = "train_log.jsonl"
SKIPPED_FILE = "skipped.tsv"


class TrainLog:
    """Per-step records to OUT/train_log.jsonl and TensorBoard (OUT/tensorboard) when it is installed. Only the
    main process logs."""

    def __init__(self, output: Path, main: bool):
        self.main = main
        self.last_losses: dict[str, float] = {}
        self.file = (output / LOG_FILE).open("a", encoding="utf-8") if main else None
        self.board = None
        if main:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.board = SummaryWriter(str(output / "tensorboard"))
            except ImportError:
                pass

    def log(self, record: dict, step: int) -> None:
        self.last_losses = {task: record[f"loss_{task}"] for task in TASKS if f"loss_{task}" in record}
        if not self.main:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.board is not None:
            for name, value in record.items():
                if name not in ("step", "epoch"):
                    self.board.add_scalar(f"train/{name}", value, step)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.board is not None:
            self.board.close()


def trim_log(path: Path, step: int) -> None:
    """Drop log records of steps after ``step``: a resumed run logs them again."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if line and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def write_skipped(path: Path, skipped: list[tuple[str, str]]) -> None:
    path.write_text("".join(f"{where}\t{why}\n" for where, why in skipped), encoding="utf-8")


def memory_gb() -> float:
    """Peak memory so far: the GPU's allocator on CUDA, the process's resident set on a CPU."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def sequence_tokens(model, batch: dict, rates: tuple[int, int], tasks: tuple[str, ...]) -> int:
    """LLM positions a batch's passes process (padding included): the tokens of tokens_per_s."""
    from ..model.omni import TASK_MODALITIES

    rows, text = batch["text"].shape
    block = {"audio": model.kept_audio_frames(batch["audio"].shape[1]) // rates[0] + 2, "video": batch["video"].shape[1] // rates[1] + 2}
    return rows * sum(
        text + sum(block[m] for m in TASK_MODALITIES[task]) + getattr(model, f"prompt_{TASK_ADAPTER[task]}").shape[1] for task in tasks
    )
