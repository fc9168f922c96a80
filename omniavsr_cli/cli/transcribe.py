"""``omniavsr transcribe``: media files in, subtitles and transcripts out."""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError, UsageError
from ._common import (
    ProgressBar,
    ShardOption,
    check_device,
    check_dtype,
    load,
    model_name,
    parse_batch_size,
    parse_rates,
    parse_shard,
    parse_workers,
)
from ._errors import ExitCode, message, one_line, reports_errors, warning_line

HELP = (
    "Transcribe videos and audio with Omni-AVSR: the audio (asr), the lips (vsr) or both (avsr); the default "
    "auto uses both where the face is seen, the audio where it is not, the lips where there is no audio. Long "
    "inputs are cut at pauses (silero VAD) into chunks of at most --max-chunk-s, decoded in batches, and "
    "written as soon as each input is done: OUT/<id>.<fmt>, mirroring the input tree, plus OUT/run.jsonl "
    "(one line per input). INPUT is files, directories, globs, @list.txt, or - (media on stdin); "
    "-o - writes one format to stdout.\n\n"
    "Exit codes: 0 all done; 3 some inputs failed (see run.jsonl); 4 all failed (--fail-fast: the first to finish); 2 bad arguments; 5 model "
    "unavailable; 6 out of memory; 130 interrupted (rerun with --skip-existing to finish). Guide: docs/transcribe.md."
)


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
    device: Annotated[
        str | None,
        typer.Option(
            help="cpu, cuda or cuda:N (default: cuda when available); all or cuda:0,cuda:1: one model per GPU (on a local Ray).",
            show_default=False,
        ),
    ] = None,
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
    face_select: Annotated[
        str,
        typer.Option(
            help="Which face when several: auto (the one in sync with the audio where several are seen, else the largest), "
            "speaker (always by synchrony: speech no face is in sync with is off-screen, transcribed from the audio), "
            "largest, center or track."
        ),
    ] = "auto",
    min_face_coverage: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="auto: chunks with the face in fewer frames than this use ASR.")
    ] = 0.5,
    guards: Annotated[bool, typer.Option("--guards/--no-guards", help="Retry and flag repeating or runaway transcripts.")] = True,
    word_timestamps: Annotated[
        bool,
        typer.Option(
            "--word-timestamps/--no-word-timestamps",
            help="Time each word from the model's attention: JSON words, subtitles cut at word boundaries.",
        ),
    ] = True,
    max_line_width: Annotated[
        int | None, typer.Option(min=0, help="Subtitle characters per line (default 42; 0: no limit).", show_default=False)
    ] = None,
    max_line_count: Annotated[int | None, typer.Option(min=1, help="Subtitle lines per cue (default 2).", show_default=False)] = None,
    max_words_per_line: Annotated[
        int | None, typer.Option(min=1, help="Subtitle words per line (default: no limit).", show_default=False)
    ] = None,
    highlight_words: Annotated[
        bool, typer.Option("--highlight-words", help="One subtitle cue per word, the word underlined in its cue.")
    ] = False,
    max_cue_s: Annotated[float | None, typer.Option(help="Longest a subtitle cue stays up (default 7 s).", show_default=False)] = None,
    speaker_labels: Annotated[
        bool,
        typer.Option(
            "--speaker-labels/--no-speaker-labels",
            help="Say who speaks in the subtitles and text: SRT and TXT \\[face 1] or \\[off-screen] before the text, VTT <v face 1>.",
        ),
    ] = False,
    workers: Annotated[
        str,
        typer.Option(
            metavar="N|auto",
            help="Inputs prepared (decoded, VAD, faces, crops) in parallel while the model runs; 2 or more: processes. "
            "auto: one per core while each gets 4 or more inputs, 1 GB of free memory each.",
        ),
    ] = "auto",
    ray: Annotated[bool, typer.Option("--ray", help="Run on Ray (Ray Data): a local Ray on this machine, or --ray-address.")] = False,
    ray_address: Annotated[
        str | None, typer.Option(help="The Ray cluster to join (e.g. auto, or ray://head:10001); implies --ray.", show_default=False)
    ] = None,
    ray_models: Annotated[int, typer.Option(min=1, help="--ray: model actors (one per GPU on GPU nodes).")] = 1,
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive", help="Search directories recursively.")] = True,
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing/--overwrite", help="Skip inputs whose outputs all exist (resume a killed run).")
    ] = False,
    fail_fast: Annotated[
        bool,
        typer.Option(
            "--fail-fast",
            help="Stop at the first input that fails; the inputs finished before it keep their outputs (exit 3, or 4 if none).",
        ),
    ] = False,
    progress: Annotated[str, typer.Option(help="auto (a bar on a terminal), bar or none.")] = "auto",
    shard: ShardOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
) -> int:
    from ..decoding import DecodingOptions
    from ..errors import Interrupted
    from ..inputs import STDIN, collect_inputs, spool_stdin
    from ..inputs import shard as shard_of
    from ..lips.detectors import check_backend
    from ..runs import shard_log
    from ..transcribe import TranscribeOptions
    from ..vad import VadOptions
    from ..writers import SubtitleOptions, parse_formats

    to_stdout = output == "-"
    try:
        chosen = parse_formats(formats or ("txt" if to_stdout else "all"))
    except ValueError as error:
        raise InputError(f"--format: {error}") from None
    if to_stdout and len(chosen) != 1:
        raise InputError(
            f"-o - writes one format to stdout, not {len(chosen)} ({','.join(chosen)}); pick one with -f or write to a directory"
        )
    options = TranscribeOptions(
        mode=mode,
        rates=parse_rates(rates),
        max_chunk_s=max_chunk_s,
        vad=vad,
        vad_options=VadOptions(threshold=vad_threshold, min_silence_ms=min_silence_ms, speech_pad_ms=speech_pad_ms),
        detector=detector,
        face_select=face_select,
        min_face_coverage=min_face_coverage,
        decoding=DecodingOptions(num_beams=beams, sample=sample, seed=seed if sample else None),
        batch_size=parse_batch_size(batch_size),
        guards=guards,
        word_timestamps=word_timestamps,
        workers=parse_workers(workers),
    )
    if progress not in ("auto", "bar", "none"):
        raise InputError(f"--progress {progress}: choose auto, bar or none")
    limits = {"max_line_width": max_line_width, "max_line_count": max_line_count, "max_words_per_line": max_words_per_line}
    given = {name: value or None for name, value in limits.items() if value is not None}  # a width of 0 is no limit
    if max_cue_s is not None:
        given["max_cue_s"] = max_cue_s
    if (given or highlight_words) and not word_timestamps:
        raise UsageError("subtitle cues are cut at word boundaries: the cue options need --word-timestamps")
    subtitles = SubtitleOptions(**given, highlight_words=highlight_words, speaker_labels=speaker_labels)
    torch_dtype = check_dtype(dtype)
    check_device(device)
    part = parse_shard(shard)
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
        if part is not None:
            given, items = len(items), shard_of(items, part.index, part.count)
            if not items:
                if not quiet:
                    print(f"transcribe: shard {part.index}/{part.count} holds none of the {given} inputs; nothing to do", file=sys.stderr)
                return ExitCode.OK
        if to_stdout and len(items) > 1 and chosen != ["jsonl"]:
            raise InputError(
                f"-o - with {len(items)} inputs: only -f jsonl (each line names its input) can carry several; or write to a directory"
            )
        if mode != "asr":
            check_backend(detector, len(items))
        on_ray = ray or ray_address is not None
        gpus = None
        if device is not None and ("," in device or device == "all"):  # one model per GPU: on a local Ray
            from ..model.loading import gpu_indices

            gpus = gpu_indices(device)
            on_ray, ray_models, device = True, len(gpus), "cuda"
        # On Ray the model actors load the model; here only its config and tokenizer are read (the meta device).
        loaded = load(model, "meta" if on_ray else device, torch_dtype, quiet or on_ray, command="transcribe")

        from ..model.loading import model_domain
        from ..transcribe import ChunkDecoded, Pipeline
        from ..writers import OutputFolder, RunRecord, json_text

        if not quiet and (domain := model_domain(loaded)):  # a narrow model says so once; its JSON says it always
            warning_line(f"model {model_name(loaded)}: {domain}")

        show_bar = progress == "bar" or (progress == "auto" and sys.stderr.isatty() and not quiet)
        pipeline = Pipeline(loaded, options)
        if word_timestamps and not quiet and not pipeline.heads_calibrated:
            warning_line(
                f"model {model_name(loaded)} has no calibrated alignment heads: word times use the default heads (omniavsr align-heads)"
            )
        folder = OutputFolder(out_dir, chosen, subtitles, shard_log(OutputFolder.LOG, part)) if out_dir is not None else None
        records: list[RunRecord] = []
        with ProgressBar(
            "transcribe", len(items), show_bar, "files  {task.fields[chunks]} chunks  {task.fields[media]:.0f} s", chunks=0, media=0.0
        ) as bar:

            def keep(record: RunRecord) -> None:
                records.append(record)
                if folder is not None:
                    folder.log(record)
                if record.status == "failed":
                    bar.failed(f"{record.id}: {record.error}")
                bar.advance(1)

            try:
                todo = []
                for item in items:
                    if skip_existing and folder is not None and folder.finished(item.clip_id):
                        source = sources.get(item.clip_id, str(item.path))
                        keep(
                            RunRecord(input=source, id=item.clip_id, status="skipped", outputs=[str(p) for p in folder.paths(item.clip_id)])
                        )
                    else:
                        todo.append(item)
                if on_ray:
                    from ..cluster import RayOptions
                    from ..cluster import transcribe as transcribe_on_ray

                    ray_options = RayOptions(
                        address=ray_address,
                        models=ray_models,
                        gpus_per_model=1.0 if (device or "").startswith("cuda") else 0.0,
                        gpus=tuple(gpus) if gpus else None,
                    )
                    events = transcribe_on_ray(loaded.directory, todo, options, ray_options, device=device)
                else:
                    events = pipeline.run(todo)
                try:
                    for event in events:
                        if isinstance(event, ChunkDecoded):
                            bar.advance(chunks=1, media=event.seconds)
                            if to_stdout and chosen == ["jsonl"]:
                                for segment in event.segments:
                                    sys.stdout.write(json_text({"input": event.item.clip_id, **segment.to_dict()}) + "\n")
                                sys.stdout.flush()
                            continue
                        keep(_finish(event, sources, folder, sys.stdout if to_stdout and chosen != ["jsonl"] else None, chosen, subtitles))
                        if fail_fast and records[-1].status == "failed":
                            break
                finally:
                    events.close()  # stops the workers of a run left early
            except KeyboardInterrupt:
                done = sum(r.status != "failed" for r in records)
                raise Interrupted(
                    f"interrupted: {done} of {len(items)} inputs are finished"
                    + (f" in {out_dir}; rerun with --skip-existing to do the rest" if out_dir else "")
                ) from None
            except OSError as error:  # the output directory itself (run.jsonl, folders) cannot be written
                raise InputError(f"{out_dir}: cannot write here ({error.strerror or error}); choose another -o") from None

    failed = [r for r in records if r.status == "failed"]
    if fail_fast and failed and len(records) < len(items):
        print(
            f"transcribe: stopped at the first failure (--fail-fast); {len(items) - len(records)} of {len(items)} inputs not transcribed"
            + (", rerun with --skip-existing to do them" if out_dir else ""),
            file=sys.stderr,
        )
    if not quiet:
        skipped = sum(r.status == "skipped" for r in records)
        media = sum(r.media_seconds for r in records)
        summary = f"transcribe: {len(records) - len(failed)} of {len(records)} inputs done ({media:.1f} s of media"
        summary += f", {skipped} already done" if skipped else ""
        summary += f") with {model_name(loaded)}, mode {mode}, rates {','.join(map(str, pipeline.rates))}"
        print(summary + (f"; outputs in {out_dir}, log in {folder.log_path}" if folder else ""), file=sys.stderr)
        if pipeline.decoder.settled_size is not None:
            print(f"transcribe: batch size settled at {pipeline.decoder.settled_size} after running out of memory", file=sys.stderr)
    if failed:
        print(
            f"transcribe: {len(failed)} failed: "
            + ", ".join(f"{one_line(r.id)} ({r.error_code})" for r in failed[:10])
            + (", ..." if len(failed) > 10 else ""),
            file=sys.stderr,
        )
        return ExitCode.ALL_FAILED if len(failed) == len(records) else ExitCode.PARTIAL
    return ExitCode.OK


def _finish(done, sources: dict[str, str], folder, stdout, formats: list[str], subtitles):
    """One input's outcome written (its files, or its one format on stdout) and as its run.jsonl record."""
    from ..writers import WRITERS, RunRecord

    source = sources.get(done.item.clip_id, str(done.item.path))
    record = RunRecord(input=source, id=done.item.clip_id, status="ok", seconds=done.seconds)
    if not done.ok:
        record.status, record.error_code, record.error = "failed", done.error.code, message(done.error)
        if source != str(done.item.path):  # media piped on stdin: its spooled copy is gone and was never the user's name
            record.error = record.error.replace(str(done.item.path), "standard input")
        return record
    transcript = done.transcript
    transcript.source = source
    record.media_seconds, record.chunks, record.flags = transcript.info["duration"], len(transcript.segments), transcript.info["flags"]
    try:
        if folder is not None:
            record.outputs = [str(path) for path in folder.write(transcript)]
        elif stdout is not None:
            stdout.write(WRITERS[formats[0]](transcript, subtitles))
            stdout.flush()
    except OSError as error:
        record.status, record.error_code = "failed", "E_WRITE"
        record.error = (
            f"{folder.directory}: cannot write {transcript.id}'s outputs ({error.strerror or error}); free space or choose another -o"
        )
    except Exception as error:  # a bug in a writer: this input fails, as a bug in the pipeline would, and the others go on
        record.status, record.error_code = "failed", "E_INTERNAL"
        record.error = f"{source}: internal error writing its outputs: {type(error).__name__}: {error}"
    return record
