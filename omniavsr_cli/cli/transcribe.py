"""``omniavsr transcribe``: media files in, subtitles and transcripts out."""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ._errors import reports_errors, warning_line

HELP = (
    "Transcribe videos and audio with Omni-AVSR: the audio (asr), the lips (vsr) or both (avsr); the default "
    "auto uses both where the face is seen, the audio where it is not, the lips where there is no audio. Long "
    "inputs are cut at pauses (silero VAD) into chunks of at most --max-chunk-s, decoded in batches, and "
    "written as soon as each input is done: OUT/<id>.<fmt>, mirroring the input tree, plus OUT/run.jsonl "
    "(one line per input). INPUT is files, directories, globs, @list.txt, or - (media on stdin); "
    "-o - writes one format to stdout.\n\n"
    "Exit codes: 0 all done; 3 some inputs failed (see run.jsonl); 4 all failed; 2 bad arguments; 5 model "
    "unavailable; 6 out of memory; 130 interrupted (rerun with --skip-existing to finish). Guide: docs/transcribe.md."
)
DTYPES = {"auto": None, "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def _rates(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        audio, video = (int(part) for part in value.split(","))
    except ValueError:
        raise InputError(f"--rates {value}: give the audio and video rates as A,V, e.g. 4,2") from None
    return audio, video


def _batch_size(value: str) -> int | None:
    if value == "auto":
        return None
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise InputError(f"--batch-size {value}: give a positive number or auto")


class _Progress:
    """A rich bar over the inputs, with chunks and media seconds decoded, on a terminal; nothing otherwise."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("transcribe"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files  {task.fields[chunks]} chunks  {task.fields[media]:.0f} s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.bar.add_task("inputs", total=total, chunks=0, media=0.0)
        self.counts = {"chunks": 0, "media_seconds": 0.0}

    def __enter__(self):
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc_info):
        if self.bar is not None:
            self.bar.stop()

    def advance(self, what: str, amount: float) -> None:
        if self.bar is not None:
            self.counts[what] += amount
            self.bar.update(self.task, chunks=self.counts["chunks"], media=self.counts["media_seconds"])

    def record(self, record) -> None:
        if record.status == "failed":
            message = f"{record.id}: {record.error}"
            if self.bar is not None:
                self.bar.console.print(f"[red]failed[/] {message}", highlight=False, markup=True)
            else:
                warning_line(message)
        if self.bar is not None:
            self.bar.update(self.task, advance=1)


@reports_errors
def transcribe(
    inputs: Annotated[list[str], typer.Argument(help="Media files, directories, globs, @list.txt, or - for stdin.", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="Output directory (created), or - for stdout (one format).")] = ".",
    formats: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="Comma list of txt,srt,vtt,tsv,json,jsonl, or all. Default: all; txt on stdout.", show_default=False
        ),
    ] = None,
    mode: Annotated[str, typer.Option(help="auto, asr (audio), vsr (lips) or avsr (both).")] = "auto",
    rates: Annotated[
        str | None,
        typer.Option(help="Audio,video compression rates the model was trained with, e.g. 4,2 (default: the finest).", show_default=False),
    ] = None,
    model: Annotated[str, typer.Option(help="Installed model name or model directory.")] = "omni-avsr-st",
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N (default: cuda when available).", show_default=False)] = None,
    dtype: Annotated[str, typer.Option(help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or fp32.")] = "auto",
    batch_size: Annotated[str, typer.Option(help="Chunks per model call, or auto (pack by length, halve on out-of-memory).")] = "auto",
    beams: Annotated[int, typer.Option(min=1, help="Beam width (official: 15).")] = 15,
    sample: Annotated[
        bool, typer.Option("--sample", help="Sample within the beams as the official evaluation did (temperature 0.6, top-p 0.9).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for --sample.")] = 0,
    max_chunk_s: Annotated[
        float, typer.Option(min=1.0, help="Longest chunk sent to the model, in seconds (the released models: 16).")
    ] = 16.0,
    vad: Annotated[bool, typer.Option("--vad/--no-vad", help="Find speech with silero VAD (otherwise: fixed windows).")] = True,
    vad_threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="silero speech probability threshold.")] = 0.5,
    min_silence_ms: Annotated[int, typer.Option(min=0, help="Shortest pause that separates speech regions.")] = 160,
    speech_pad_ms: Annotated[
        int,
        typer.Option(
            min=0, help="Silence kept on each side of the speech in a chunk, as the model heard in training (within --max-chunk-s)."
        ),
    ] = 400,
    detector: Annotated[str, typer.Option(help="Landmark backend: mediapipe, dlib, face-alignment, or landmarks:PATH.")] = "mediapipe",
    face_select: Annotated[str, typer.Option(help="Which face when several: largest, center or track.")] = "largest",
    min_face_coverage: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="auto: chunks with the face in fewer frames than this use ASR.")
    ] = 0.5,
    guards: Annotated[bool, typer.Option("--guards/--no-guards", help="Retry and flag repeating or runaway transcripts.")] = True,
    workers: Annotated[int, typer.Option(min=1, help="Inputs decoded and tracked in parallel while the model runs.")] = 1,
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive", help="Search directories recursively.")] = True,
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing/--overwrite", help="Skip inputs whose outputs all exist (resume a killed run).")
    ] = False,
    progress: Annotated[str, typer.Option(help="auto (a bar on a terminal), bar or none.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
) -> int:
    from ..errors import ExitCode, InputError, OmniAVSRError
    from ..inputs import STDIN, collect_inputs, spool_stdin
    from ..lips.face_select import RULES
    from ..lips.landmarks import check_backend
    from ..model.omni import DecodingOptions
    from ..transcribe import MODES, TranscribeOptions
    from ..vad import VadOptions
    from ..writers import parse_formats

    to_stdout = output == "-"
    try:
        chosen = parse_formats(formats or ("txt" if to_stdout else "all"))
    except ValueError as error:
        raise InputError(f"--format: {error}") from None
    if to_stdout and len(chosen) != 1:
        raise InputError(
            f"-o - writes one format to stdout, not {len(chosen)} ({','.join(chosen)}); pick one with -f or write to a directory"
        )
    if mode not in MODES:
        raise InputError(f"--mode {mode}: choose one of {', '.join(MODES)}")
    if face_select not in RULES:
        raise InputError(f"--face-select {face_select!r}: choose one of {', '.join(RULES)}")
    if progress not in ("auto", "bar", "none"):
        raise InputError(f"--progress {progress}: choose auto, bar or none")
    if dtype not in DTYPES:
        raise InputError(f"--dtype {dtype}: choose one of {', '.join(DTYPES)}")
    out_dir = None if to_stdout else Path(output)
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a directory; choose another -o")
    logging.basicConfig(stream=sys.stderr, format="omniavsr: %(message)s", level=logging.ERROR if quiet else logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="omniavsr-") as scratch:
        sources: dict[str, str] = {}
        items = (
            collect_inputs([a for a in inputs if a != STDIN], exclude=out_dir, recursive=recursive)
            if any(a != STDIN for a in inputs)
            else []
        )
        if STDIN in inputs:
            piped = spool_stdin(Path(scratch))
            sources[piped.clip_id] = STDIN
            items.append(piped)
        if to_stdout and len(items) > 1 and chosen != ["jsonl"]:
            raise InputError(
                f"-o - with {len(items)} inputs: only -f jsonl (each line names its input) can carry several; or write to a directory"
            )
        if mode != "asr":
            check_backend(detector)
        options = TranscribeOptions(
            mode=mode,
            rates=_rates(rates),
            max_chunk_s=max_chunk_s,
            vad=vad,
            vad_options=VadOptions(threshold=vad_threshold, min_silence_ms=min_silence_ms, speech_pad_ms=speech_pad_ms),
            detector=detector,
            face_select=face_select,
            min_face_coverage=min_face_coverage,
            decoding=DecodingOptions(num_beams=beams, sample=sample, seed=seed if sample else None),
            batch_size=_batch_size(batch_size),
            guards=guards,
            workers=workers,
        )
        loaded = _load(model, device, DTYPES[dtype], quiet)

        from ..model.loading import model_domain
        from ..transcribe import Pipeline

        if not quiet and (domain := model_domain(loaded)):  # a narrow model says so once; its JSON says it always
            warning_line(f"model {_model_name(loaded)}: {domain}")

        show_bar = progress == "bar" or (progress == "auto" and sys.stderr.isatty() and not quiet)
        with _Progress(len(items), show_bar) as bar:
            pipeline = Pipeline(
                loaded,
                options,
                chosen,
                out_dir,
                stdout=sys.stdout if to_stdout else None,
                skip_existing=skip_existing,
                on_record=bar.record,
                on_progress=bar.advance,
            )
            try:
                records = pipeline.run(items, sources)
            except KeyboardInterrupt:
                done = sum(r.status != "failed" for r in pipeline.records)
                raise OmniAVSRError(
                    f"interrupted: {done} of {len(items)} inputs are finished"
                    + (f" in {out_dir}; rerun with --skip-existing to do the rest" if out_dir else ""),
                    code="E_INTERRUPTED",
                    exit_code=ExitCode.INTERRUPTED,
                ) from None
            except OSError as error:  # the output directory itself (run.jsonl, folders) cannot be written
                raise InputError(f"{out_dir}: cannot write here ({error.strerror or error}); choose another -o") from None

    failed = [r for r in records if r.status == "failed"]
    if not quiet:
        skipped = sum(r.status == "skipped" for r in records)
        media = sum(r.media_seconds for r in records)
        summary = f"transcribe: {len(records) - len(failed)} of {len(records)} inputs done ({media:.1f} s of media"
        summary += f", {skipped} already done" if skipped else ""
        summary += f") with {_model_name(loaded)}, mode {mode}, rates {','.join(map(str, pipeline.rates))}"
        print(summary + (f"; outputs in {out_dir}, log in {out_dir / 'run.jsonl'}" if out_dir else ""), file=sys.stderr)
        if pipeline.decoder.settled_size is not None:
            print(f"transcribe: batch size settled at {pipeline.decoder.settled_size} after running out of memory", file=sys.stderr)
    if failed:
        print(
            f"transcribe: {len(failed)} failed: "
            + ", ".join(f"{r.id} ({r.error_code})" for r in failed[:10])
            + (", ..." if len(failed) > 10 else ""),
            file=sys.stderr,
        )
        return ExitCode.ALL_FAILED if len(failed) == len(records) else ExitCode.PARTIAL
    return ExitCode.OK


def _model_name(model) -> str:
    return Path(model.directory).name if model.directory else "the model"


def _load(name: str, device: str | None, dtype: str | None, quiet: bool, command: str = "transcribe"):
    """The model, or one clear line on how to get it."""
    import torch

    from ..errors import ExitCode, OmniAVSRError
    from ..model.loading import load_model
    from ..weights import DEFAULT_MODEL, weights_dir

    try:
        model = load_model(name, device=device, dtype=getattr(torch, dtype) if dtype else None)
    except OmniAVSRError as error:
        if error.code == "E_NO_MODEL" and name == DEFAULT_MODEL:
            raise OmniAVSRError(
                f"the default model {DEFAULT_MODEL} is not installed in {weights_dir()}; `omniavsr weights download {DEFAULT_MODEL}` "
                "says how to get it (a manual download and `omniavsr weights import-official`), or pass --model DIR",
                code="E_NO_MODEL",
                exit_code=ExitCode.MODEL_UNAVAILABLE,
            ) from None
        raise
    if not quiet:
        print(
            f"{command}: model {Path(model.directory).name} ({model.directory}) on {next(model.parameters()).device}, "
            f"{str(next(model.parameters()).dtype).removeprefix('torch.')}",
            file=sys.stderr,
        )
    return model
