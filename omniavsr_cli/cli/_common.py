"""What several subcommands share: parsing --rates, --batch-size, --device, --dtype, --shard and --workers, loading a model with its one
status line, and the progress bar."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import InputError, ModelUnavailable
from ..inputs import Shard
from ._errors import one_line, warning_line

if TYPE_CHECKING:  # loading imports torch: the CLI starts without it
    from ..model.loading import LoadedModel

DTYPES = {"auto": None, "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def parse_rates(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        audio, video = (int(part) for part in value.split(","))
    except ValueError:
        raise InputError(f"--rates {value}: give the audio and video rates as A,V, e.g. 4,2") from None
    return audio, video


def parse_batch_size(value: str) -> int | None:
    if value == "auto":
        return None
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise InputError(f"--batch-size {value}: give a positive number or auto")


ShardOption = Annotated[
    str | None,
    typer.Option(
        metavar="I/N",
        help="Only part I of N (1-based) of the inputs, chosen by a hash of each input's id, for job arrays "
        "(docs/cluster.md); each part keeps its own log (eval: its own -o folder).",
        show_default=False,
    ),
]


def parse_workers(value: str) -> int | str:
    """--workers as the library takes it: a number, or the word as given (parallel.check_workers judges both)."""
    return int(value) if value.isdigit() else value


def parse_shard(value: str | None) -> Shard | None:
    return None if value is None else Shard.parse(value)


def check_device(value: str | None) -> str | None:
    """--device as given: torch judges the rest when the model loads, but the meta device loads without failing and
    then cannot run anything (omniavsr itself loads on it to read a model's config and tokenizer only)."""
    if value is not None and value.strip().lower().split(":")[0] == "meta":
        raise InputError(
            f"--device {value}: the meta device holds shapes but no weights, so nothing runs on it; choose cpu, cuda or cuda:N"
        )
    return value


def check_dtype(value: str) -> str | None:
    """--dtype's torch name (None: the device's default)."""
    if value not in DTYPES:
        raise InputError(f"--dtype {value}: choose one of {', '.join(DTYPES)}")
    return DTYPES[value]


def model_name(model: LoadedModel) -> str:
    return model.directory.name if model.directory else "the model"


def load(name: str, device: str | None, dtype: str | None, quiet: bool, command: str):
    """The loaded model, or one clear line on how to get it; says which model runs where unless ``quiet``."""
    import torch

    from ..model.loading import load_model
    from ..weights import DEFAULT_MODEL, weights_dir

    try:
        model = load_model(name, device=device, dtype=getattr(torch, dtype) if dtype else None)
    except ModelUnavailable as error:
        if error.code == "E_NO_MODEL" and name == DEFAULT_MODEL:
            raise ModelUnavailable(
                f"the default model {DEFAULT_MODEL} is not installed in {weights_dir()}; `omniavsr weights download {DEFAULT_MODEL}` "
                "says how to get it (a manual download and `omniavsr weights import-official`), or pass --model DIR"
            ) from None
        raise
    if not quiet:
        print(
            f"{command}: model {model_name(model)} ({model.directory}) on {model.device}, {str(model.dtype).removeprefix('torch.')}",
            file=sys.stderr,
        )
    return model


class ProgressBar:
    """A rich bar on stderr over ``total`` items, with running counters, while stderr is a terminal; nothing
    otherwise. ``detail`` shows the counters (``"{task.fields[chunks]} chunks"``); failures print above the bar,
    or as warning lines without one."""

    def __init__(self, label: str, total: int, enabled: bool, detail: str = "", **counters: float):
        self.bar, self.counters = None, dict(counters)
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(detail),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.bar.add_task(label, total=total, **self.counters)

    def __enter__(self) -> ProgressBar:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.bar is not None:
            self.bar.stop()

    def advance(self, items: float = 0, **counters: float) -> None:
        """``items`` more done; each counter grows by its amount."""
        for name, amount in counters.items():
            self.counters[name] += amount
        if self.bar is not None:
            self.bar.update(self.task, advance=items, **self.counters)

    def failed(self, message: str) -> None:
        if self.bar is not None:
            from rich.markup import escape  # a file name may hold [brackets] that rich would take for markup

            self.bar.console.print(f"[red]failed[/] {escape(one_line(message))}", highlight=False, markup=True)
        else:
            warning_line(message)
