"""``omniavsr prep-lips``: videos in, the 96x96 mouth crops (and 16 kHz audio) the model was trained on out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ._common import ShardOption, parse_shard, parse_workers
from ._errors import ExitCode, message, one_line, reports_errors, warning_line

HELP = (
    "Crop the mouth region of every input video exactly as the Omni-AVSR training data was cropped "
    "(auto_avsr geometry: 68 landmarks, smoothing, similarity warp to the mean face, 96x96 at 25 fps), and "
    "write 16 kHz mono audio beside it. Inputs are files, directories (searched recursively), globs or "
    "@list.txt files; OUT mirrors the input tree: <id>.mp4, <id>.wav, <id>.landmarks.npz and OUT/prep.jsonl "
    "(one line per clip). Finished clips are skipped, so rerunning an interrupted run finishes it.\n\n"
    "Exit codes: 0 all clips prepared; 3 some failed (listed, reasons in prep.jsonl); 4 all failed; "
    "2 bad arguments; 5 landmark backend (or, with --ray, Ray) unavailable; 130 interrupted. Guide: docs/prep-lips.md."
)


def _progress_reporter(total: int, live: bool):
    """Live progress with ETA on a terminal (``live``); otherwise one line per failed clip as it happens."""
    if not live:
        return None, lambda record: warning_line(f"{record.id}: {record.error['message']}") if record.status != "ok" else None
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("prep-lips"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[frames]} frames"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = progress.add_task("clips", total=total, frames=0)
    frames = 0

    def on_record(record) -> None:
        nonlocal frames
        frames += record.frames if not record.skipped else 0
        if record.status != "ok":
            progress.console.print(f"[red]failed[/] {escape(one_line(record.id + ': ' + record.error['message']))}", highlight=False)
        progress.update(task, advance=1, frames=frames)

    return progress, on_record


@reports_errors
def prep_lips(
    inputs: Annotated[list[str], typer.Argument(help="Video files, directories, globs or @list.txt.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory (created).", show_default=False)],
    detector: Annotated[
        str, typer.Option(help="Landmark backend: mediapipe, dlib, face-alignment, or landmarks:PATH (precomputed .pkl/.npz).")
    ] = "mediapipe",
    face_select: Annotated[
        str,
        typer.Option(
            help="Which face when several: auto (the one in sync with the audio where several are seen, else the largest), "
            "speaker (always by synchrony), largest (auto_avsr), center, or track (follow one person)."
        ),
    ] = "auto",
    min_face_coverage: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Fail a clip whose face is found in fewer frames than this fraction.")
    ] = 0.5,
    workers: Annotated[
        str,
        typer.Option(
            metavar="N|auto",
            help="Clips prepared in parallel (processes); auto: one per core while each gets 4 or more clips, "
            "1 GB of free memory each. Ignored with --ray.",
        ),
    ] = "auto",
    ray: Annotated[
        bool, typer.Option("--ray/--no-ray", help="Run on Ray (Ray Data): a local Ray on this machine, or --ray-address; one clip per CPU.")
    ] = False,
    ray_address: Annotated[
        str | None, typer.Option(help="The Ray cluster to join (e.g. auto, or ray://head:10001); implies --ray.", show_default=False)
    ] = None,
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing/--overwrite", help="Skip clips already finished in OUT, or redo them.")
    ] = True,
    manifest: Annotated[
        bool,
        typer.Option(
            "--manifest",
            help="Also write OUT/manifest.csv (Omni-AVSR 5 columns) and manifest.jsonl for clips with a transcript .txt beside them.",
        ),
    ] = False,
    debug_crops: Annotated[
        bool, typer.Option("--debug-crops", help="Write <id>.crops.png: frames with landmarks beside their crops.")
    ] = False,
    shard: ShardOption = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors on stderr: no progress or summary; each failed clip still gets its line.")
    ] = False,
) -> int:
    from ..errors import InputError, Interrupted, UsageError
    from ..inputs import collect_inputs
    from ..inputs import shard as shard_of
    from ..lips.detectors import check_backend
    from ..lips.prep import RECORDS_FILE, PrepOptions, prepare
    from ..runs import shard_log
    from ..training.manifests import write_manifests

    options = PrepOptions(detector=detector, face_select=face_select, min_face_coverage=min_face_coverage, debug_crops=debug_crops)
    part = parse_shard(shard)
    worker_setting = parse_workers(workers)
    if part is not None and manifest:
        raise UsageError(
            "--manifest with --shard: each shard would write its own clips' manifest over the others'; once every shard is done, "
            "run prep-lips once more without --shard and with --manifest (finished clips are skipped)"
        )
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a directory; choose another --output")
    items = collect_inputs(inputs, exclude=output)
    if part is not None:
        given, items = len(items), shard_of(items, part.index, part.count)
        if not items:
            if not quiet:
                print(f"prep-lips: shard {part.index}/{part.count} holds none of the {given} clips; nothing to do", file=sys.stderr)
            return ExitCode.OK
    records_file = shard_log(RECORDS_FILE, part)
    check_backend(detector, len(items))
    ray_options = None
    if ray or ray_address is not None:
        from ..cluster import RayOptions

        ray_options = RayOptions(address=ray_address)

    progress, report = _progress_reporter(len(items), live=sys.stderr.isatty() and not quiet)
    finished = 0

    def on_record(record) -> None:
        nonlocal finished
        finished += record.status == "ok"
        report(record)

    try:
        if progress is not None:
            progress.start()
        records = prepare(
            items,
            output,
            options,
            workers=worker_setting,
            ray=ray_options,
            skip_existing=skip_existing,
            on_record=on_record,
            describe=message,
            records_file=records_file,
        )
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: {finished} of {len(items)} clips are finished in {output}; rerun the same command to do the rest"
        ) from None
    except OSError as error:
        raise InputError(f"{output}: cannot write the outputs here ({error.strerror or error}); choose another --output") from None
    finally:
        if progress is not None:
            progress.stop()

    failed = [r for r in records if r.status != "ok"]
    skipped = sum(r.skipped for r in records)
    frames = sum(r.frames for r in records if r.status == "ok")
    summary = f"prep-lips: {len(records) - len(failed)} of {len(records)} clips prepared ({frames} frames"
    summary += f", {skipped} already done" if skipped else ""
    summary += f"); records in {output / records_file}"
    if manifest:
        rows, without_audio = write_manifests(output, items, records)
        summary += f"; manifest: {rows} clips with transcripts"
        summary += f" ({without_audio} without audio, only in manifest.jsonl)" if without_audio else ""
    if not quiet:
        print(summary, file=sys.stderr)
    if failed:
        print(
            f"prep-lips: {len(failed)} failed: "
            + ", ".join(f"{one_line(r.id)} ({r.error['code']})" for r in failed[:10])
            + (", ..." if len(failed) > 10 else ""),
            file=sys.stderr,
        )
        return ExitCode.ALL_FAILED if len(failed) == len(records) else ExitCode.PARTIAL
    return ExitCode.OK
