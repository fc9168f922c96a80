"""Transcription on a Ray cluster (Ray Data): the same chunks, segments and transcripts as Pipeline.run.

    a dataset of inputs, one block each
      -> map_batches(prepare)                 CPU tasks on every CPU of the cluster: probe, audio, VAD, faces, crops
      -> map_batches(ChunkDecoder)            an actor pool, one model per actor (num_gpus=1 each on GPU nodes):
                                              batches of chunks from any inputs, decoded as the pipeline decodes them
      -> this process                         each input's segments gathered as Pipeline.run gathers them; an
                                              InputDone per input, for the caller to write (exactly once)

Ray retries a task whose worker dies and restarts a dead model actor (Ray Data's defaults); what it still
loses leaves inputs without an outcome, and those are given one here: failed, E_WORKER_LOST, so a rerun with
skip-existing does only them.
Rows travel as pickled bytes: a chunk holds numpy arrays that Arrow would copy column by column.

What transcribe and prep-lips (lips/prep.py) share: :func:`connect` and :func:`cpu_tasks`. Ray is imported only
when asked for, and the transcription side only when it runs, so prep-lips joins a cluster without loading torch.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ModelUnavailable, OmniAVSRError, parameter
from .inputs import InputFile

if TYPE_CHECKING:
    from .transcribe import InputDone, Pipeline, TranscribeOptions

INSTALL = "pip install 'omniavsr[ray]'"


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start a local Ray (or join the one ray.init() already made); else ray.init(address)
    models: int = 1  # model actors; each holds a whole model
    gpus_per_model: float = 0.0  # 1 on GPU nodes: one model per GPU
    gpus: tuple[int, ...] | None = None  # a local Ray: only these GPUs of this machine (None: all it has)
    chunks_per_batch: int = 32  # chunks handed to a model actor at a time (it packs them by token budget)


def _ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise ModelUnavailable(f"Ray is not installed: {INSTALL}", code="E_NO_RAY") from None
    return ray


def connect(options: RayOptions) -> None:
    """Join the cluster at ``options.address``, or start a local one using every CPU (nothing when already joined)."""
    ray = _ray()
    for name in ("ray", "ray.data"):  # their progress notes are not ours to print: the CLI has its own
        logging.getLogger(name).setLevel(logging.ERROR)
    if ray.is_initialized():
        return
    if options.address is None and options.gpus is not None:  # the local Ray sees only the GPUs chosen
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, options.gpus))
    try:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ModelUnavailable(
            f"{parameter('address')} {options.address}: cannot join the Ray cluster ({error})", code="E_NO_RAY"
        ) from None


def cpu_tasks(rows: list[dict], task: Callable, **task_kwargs):
    """A dataset of ``rows`` (at least one), a block each, mapped by ``task(batch, **task_kwargs)`` one row at a
    time in Ray tasks of one CPU each: a plain function, so Ray spreads the rows over every CPU of the cluster."""
    ray = _ray()
    from ray.data import DataContext

    context = DataContext.get_current()
    context.max_errored_blocks = -1  # a block lost with its retries spent loses its rows (the caller fails them), not the run
    context.enable_progress_bars = False
    context.verbose_progress = False
    return ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(task, fn_kwargs=task_kwargs, batch_size=1, num_cpus=1)


def _row(index: int, kind: str, payload, chunk: int = -1) -> dict:
    return {"index": [index], "kind": [kind], "chunk": [chunk], "payload": [pickle.dumps(payload)]}


def _prepare(batch: dict, options: TranscribeOptions, min_video_frames: int, cwd: str) -> Iterator[dict]:
    """A CPU task: one input -> its chunks, then what was learnt of it (or its error), one row at a time."""
    from .transcribe import InputState, chunk_input

    for index, pickled in zip(batch["index"], batch["item"]):
        item = pickle.loads(pickled)
        if not item.path.is_absolute():
            os.chdir(cwd)  # a relative input names the file it names where the run started; the worker is this job's alone
        state = InputState(int(index), item, time.perf_counter())
        try:
            for chunk in chunk_input(item, options, state, min_video_frames):
                chunk.index, chunk.media_seconds = state.chunks, state.duration
                state.chunks += 1
                yield _row(int(index), "chunk", chunk, chunk.index)
            yield _row(int(index), "done", (state.learnt(), state.chunks))
        except OmniAVSRError as error:
            yield _row(int(index), "failed", error)
        except Exception as error:  # a bug: this input fails, the others go on
            yield _row(
                int(index), "failed", OmniAVSRError(f"{item.path}: internal error: {type(error).__name__}: {error}", code="E_INTERNAL")
            )


class _ChunkDecoder:
    """A model actor: decodes the chunk rows of each batch it is given (passing the other rows on). Made by
    :func:`_decoder_class` with its model: arguments kept in Ray's object store could be lost to a restart."""

    model: str
    device: str | None
    options: TranscribeOptions

    def __init__(self):
        from .model.loading import load_model
        from .transcribe import Pipeline

        self.pipeline = Pipeline(load_model(self.model, device=self.device), self.options)

    def __call__(self, batch: dict) -> dict:
        rows = list(zip(batch["index"], batch["kind"], batch["chunk"], batch["payload"]))
        chunks = {k: pickle.loads(payload) for k, (_, kind, _, payload) in enumerate(rows) if kind == "chunk"}
        out = {"index": [], "kind": [], "chunk": [], "payload": []}
        decoded = dict(zip(chunks, self.pipeline.decode_pooled(list(chunks.values()))))
        for k, (index, kind, chunk, payload) in enumerate(rows):
            if kind == "chunk":
                payload, kind = pickle.dumps((decoded[k], chunks[k].seconds)), "decoded"
            for name, value in zip(out, (index, kind, chunk, payload)):
                out[name].append(value)
        return out


def _model_bytes(directory: Path) -> int:
    """The weights' size on disk, twice: the weights in memory plus the activations and beams of a batch."""
    return 2 * sum(path.stat().st_size for path in directory.glob("*.safetensors"))


def _decoder_class(model: str, device: str | None, options: TranscribeOptions) -> type:
    return type("ChunkDecoder", (_ChunkDecoder,), {"model": model, "device": device, "options": options})


def transcribe(
    model: str | Path, items: list[InputFile], options: TranscribeOptions, ray_options: RayOptions = RayOptions(), device: str | None = None
) -> Iterator[InputDone]:
    """Transcribe ``items`` on the Ray cluster: an InputDone per input as each completes (in no set order).

    ``model`` is loaded by each model actor (by name or by a path every node can read); this process reads
    only its config, on the meta device. Call :func:`connect` first to choose the cluster."""
    ray = _ray()
    connect(ray_options)
    from .model.loading import load_model, resolve
    from .transcribe import Pipeline

    directory = resolve(model)  # every model actor loads this directory
    # The bookkeeping of Pipeline.run on the gathering side: its model never runs (meta: config and names only).
    gatherer = Pipeline(load_model(directory, device="meta"), options)
    if not items:
        return
    chunks = cpu_tasks(
        # Items travel pickled: a path that is not valid UTF-8 is no Arrow string.
        [{"index": n, "item": pickle.dumps(item)} for n, item in enumerate(items)],
        _prepare,
        options=gatherer.options,
        min_video_frames=gatherer.model.module.min_video_frames(gatherer.rates[1]),
        cwd=os.getcwd(),
    )
    decoded = chunks.map_batches(
        _decoder_class(str(directory), device, gatherer.options),
        batch_size=ray_options.chunks_per_batch,
        compute=ray.data.ActorPoolStrategy(size=ray_options.models),
        num_gpus=ray_options.gpus_per_model,
        num_cpus=0 if ray_options.gpus_per_model else 1,
        # What a model holds in memory, so Ray places actors where it fits; also keeps the two stages apart (Ray
        # would otherwise fuse the preparation into the actors and prepare one input at a time per model).
        memory=_model_bytes(directory),
    )
    yield from _gather(gatherer, items, decoded.iter_rows())


def _gather(gatherer: Pipeline, items: list[InputFile], rows) -> Iterator[InputDone]:
    """Each input's outcome from the decoded rows, a row seen twice (a retried task's) counted once."""
    from .transcribe import InputDone, InputState

    started = time.perf_counter()
    states = {n: InputState(n, item, started) for n, item in enumerate(items)}
    gatherer.in_flight.update(states)
    seen: set[tuple[int, int]] = set()
    for row in rows:
        index, kind, chunk = int(row["index"]), row["kind"], int(row["chunk"])
        state = states[index]
        if index not in gatherer.in_flight:
            continue  # already done or failed
        payload = pickle.loads(row["payload"])
        if kind == "decoded" and (index, chunk) not in seen:
            seen.add((index, chunk))
            segments, seconds = payload
            gatherer.add_decoded(state, chunk, segments, seconds)
        elif kind == "done":
            learnt, state.chunks = payload
            gatherer.add_prepared(state, learnt)
        elif kind == "failed":
            gatherer.add_failed(state, payload)
        yield from (event for event in gatherer.take_ready() if isinstance(event, InputDone))
    for index in list(gatherer.in_flight):
        gatherer.add_failed(
            states[index],
            OmniAVSRError(f"{items[index].path}: its Ray worker was lost (retries spent); rerun to do it", code="E_WORKER_LOST"),
        )
    yield from (event for event in gatherer.take_ready() if isinstance(event, InputDone))
