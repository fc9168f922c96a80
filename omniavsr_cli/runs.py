"""The logs of a batch run split into shards (job arrays, docs/cluster.md), merged into one run's log.

Each shard of ``transcribe`` or ``prep-lips`` appends to a log of its own in the shared output folder
(``run.shard-2-of-8.jsonl`` beside ``run.jsonl``, ``prep.shard-2-of-8.jsonl`` beside ``prep.jsonl``), so that no
two tasks write one file. Merging reads the run's log and every shard's, keeps one line per input id (the last
one read wins) and gives the merged log and its counts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .atomic import write_text_atomic
from .errors import InputError
from .inputs import InputFile, Shard
from .lips.prep import RECORDS_FILE
from .writers import OutputFolder

# The logs a batch command keeps in its output folder: transcribe's run.jsonl, prep-lips' prep.jsonl.
LOGS = (OutputFolder.LOG, RECORDS_FILE)


def shard_log(log: str, part: Shard | None) -> str:
    """The name of ``log`` for one shard: ``run.jsonl`` -> ``run.shard-2-of-8.jsonl``; ``log`` itself without one."""
    if part is None:
        return log
    stem, _, suffix = log.rpartition(".")
    return f"{stem}.{part.name}.{suffix}"


def log_files(directory: Path, log: str) -> list[Path]:
    """``log`` in ``directory`` (when there) and then its shards' logs, ordered by their count and index."""
    whole = directory / log
    return ([whole] if whole.is_file() else []) + [path for _, path in _shard_logs(directory, log)]


def _shard_logs(directory: Path, log: str) -> list[tuple[tuple[int, int], Path]]:
    """((count, index), path) of each shard's log of ``log`` in ``directory``, sorted."""
    stem, _, suffix = log.rpartition(".")
    pattern = re.compile(rf"{re.escape(stem)}\.shard-(\d+)-of-(\d+)\.{re.escape(suffix)}")
    shards = []
    for path in directory.glob(f"{stem}.shard-*-of-*.{suffix}") if directory.is_dir() else ():
        if found := pattern.fullmatch(path.name):
            shards.append(((int(found[2]), int(found[1])), path))
    return sorted(shards)


def error_code(record: dict) -> str | None:
    """A failed record's code: run.jsonl's ``error_code``, or prep.jsonl's ``error.code``."""
    error = record.get("error")
    return record.get("error_code") or (error.get("code") if isinstance(error, dict) else None)


@dataclass
class MergedLog:
    """One log merged from its shards: a record per input id, sorted by id."""

    log: Path  # where the merged log goes: the run's own log
    sources: list[Path]
    lines: dict[str, str]  # input id -> its line, as the shard wrote it
    unreadable: int = 0  # lines that are not a record (a task killed while writing one)
    missing: list[str] = field(default_factory=list)  # ids of the given inputs that no log has
    # "I/N" of each shard without a log, where another shard of N has one: its inputs are in no log
    absent_shards: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # the shard counts N the logs were made with

    @cached_property
    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.lines.values()]

    @property
    def failed(self) -> list[dict]:
        return [record for record in self.records if record.get("status") == "failed"]

    @property
    def skipped(self) -> int:
        return sum(record.get("status") == "skipped" for record in self.records)

    def total(self, key: str) -> float:
        """The sum of a record field (``media_seconds``, ``frames``) over the inputs that were done."""
        return sum(record.get(key) or 0 for record in self.records if record.get("status") == "ok")

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines.values())


def _merge_log(directory: Path, log: str, inputs: Sequence[InputFile] | None) -> MergedLog:
    sources = log_files(directory, log)
    lines: dict[str, str] = {}
    kept: dict[str, str] = {}  # input id -> the status of its kept line
    unreadable = 0
    for source in sources:
        for line in source.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
                clip_id, status = str(record["id"]), record["status"]
            except (ValueError, KeyError, TypeError):
                unreadable += bool(line.strip())
                continue
            if status == "skipped" and kept.get(clip_id) == "ok":
                continue
            lines[clip_id], kept[clip_id] = line, status
    ordered = {clip_id: lines[clip_id] for clip_id in sorted(lines)}
    missing = [item.clip_id for item in inputs or () if item.clip_id not in ordered]
    parts = {part for part, _ in _shard_logs(directory, log)}
    counts = sorted({count for count, _ in parts})
    absent = [f"{index}/{count}" for count in counts for index in range(1, count + 1) if (count, index) not in parts]
    return MergedLog(directory / log, sources, ordered, unreadable, missing, absent, counts)


def merge_logs(directory: Path, inputs: Sequence[InputFile] | None = None) -> list[MergedLog]:
    """Every batch log (``LOGS``) found in ``directory``, each merged from its shards; nothing is written (see
    ``write_merged``).

    Each log's own file is read first, then its shards' (by count, then index), each from top to bottom; the last
    line of an input wins, but a ``skipped`` line (the outputs were there) keeps an earlier ``ok`` one, which says
    the same with its numbers. With ``inputs``, ``missing`` lists those no log has a line for."""
    found = [log for log in LOGS if log_files(directory, log)]
    if not found:
        raise InputError(
            f"{directory}: no run log here ({', '.join(LOGS)} or their shards' logs); give the output folder of the sharded runs"
        )
    return [_merge_log(directory, log, inputs) for log in found]


def write_merged(merged: MergedLog) -> Path:
    """The merged log written over the run's own log, atomically."""
    write_text_atomic(merged.log, merged.text())
    return merged.log
