"""``omniavsr bench``: time, real-time factor, tokens/s and peak memory per transcription stage."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ._errors import reports_errors, warning_line

HELP = (
    "Measure transcription per stage (probe, audio decoding, VAD, video decoding and cropping, landmarks, "
    "encoders, LLM): seconds, times real time, LLM tokens/s, peak memory. FILES default to a generated "
    "talking-face clip; --model random (the default when the default model is not installed) is a "
    "random-weight model of the released size, small a few-MB one. --against-loop also decodes the same "
    "chunks one at a time as the official evaluation does and reports the speedup. Guide: docs/benchmarks.md."
)


@reports_errors
def bench(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="Media files, directories, globs or @lists, as transcribe takes (default: a generated clip).", show_default=False
        ),
    ] = None,
    model: Annotated[str, typer.Option(help="Installed model name or directory, random (released size) or small.")] = "omni-avsr-st",
    mode: Annotated[str, typer.Option(help="auto, asr, vsr or avsr.")] = "avsr",
    rates: Annotated[str | None, typer.Option(help="Audio,video rates, e.g. 4,2.", show_default=False)] = None,
    seconds: Annotated[float, typer.Option(min=2.0, help="Length of the generated clip.")] = 64.0,
    max_chunk_s: Annotated[float, typer.Option(min=1.0, help="Longest chunk, seconds.")] = 16.0,
    batch_size: Annotated[str, typer.Option(help="Chunks per model call, or auto.")] = "auto",
    beams: Annotated[int, typer.Option(min=1, help="Beam width.")] = 15,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N.", show_default=False)] = None,
    detector: Annotated[str, typer.Option(help="Landmark backend.")] = "mediapipe",
    workers: Annotated[int, typer.Option(min=1, help="Input preparation threads.")] = 1,
    word_timestamps: Annotated[
        bool, typer.Option("--word-timestamps/--no-word-timestamps", help="Time the words, as transcribe does by default.")
    ] = True,
    against_loop: Annotated[bool, typer.Option("--against-loop", help="Also decode the chunks one at a time (the official loop).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> int:
    import torch

    from ..bench import format_report, generated_media, run_bench
    from ..decoding import DecodingOptions
    from ..errors import ModelUnavailable
    from ..inputs import collect_inputs
    from ..model.loading import default_device_and_dtype, load_model, resolve
    from ..transcribe import TranscribeOptions
    from ._common import check_device, parse_batch_size, parse_rates

    check_device(device)
    # the inputs first: a wrong path should not wait for a model to load
    named = [item.path for item in collect_inputs(files)] if files else []
    missing = [str(path) for path in named if not path.is_file()]
    if missing:
        raise InputError(f"{missing[0]}: no such file; check the path")
    if model not in ("random", "small"):
        try:
            resolve(model)
        except ModelUnavailable:
            if model != "omni-avsr-st":
                raise
            warning_line("the default model is not installed: measuring a random-weight model of the released size (--model random)")
            model = "random"
    if model in ("random", "small"):
        from ..model.config import OmniAVSRConfig
        from ..model.random_init import random_model, small_config

        target, dtype = default_device_and_dtype(device, None)
        loaded = random_model(OmniAVSRConfig() if model == "random" else small_config())
        loaded.module.to(device=target, dtype=dtype)
    else:
        loaded = load_model(model, device=device)
    options = TranscribeOptions(
        mode=mode,
        rates=parse_rates(rates),
        max_chunk_s=max_chunk_s,
        batch_size=parse_batch_size(batch_size),
        decoding=DecodingOptions(num_beams=beams),
        detector=detector,
        word_timestamps=word_timestamps,
        workers=workers,
    )
    with tempfile.TemporaryDirectory(prefix="omniavsr-bench-") as scratch:
        inputs = named or [generated_media(Path(scratch), seconds)]
        result = run_bench(loaded, inputs, options, against_loop=against_loop)
    result.settings["model"] = model
    result.settings["dtype"] = str(loaded.dtype).removeprefix("torch.")
    if as_json:
        from dataclasses import asdict

        print(json.dumps({**asdict(result), "real_time_factor": result.real_time_factor}, indent=2))
    else:
        print(format_report(result))
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return 0
