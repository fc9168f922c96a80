"""``omniavsr runs merge OUT``: the logs of a batch run split into shards (job arrays) merged into one run's."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ._errors import ExitCode, one_line, reports_errors, warning_line

app = typer.Typer(help="Batch runs split into shards (--shard I/N, job arrays): merge their logs.", no_args_is_help=True)

MERGE_HELP = (
    "Merge the logs the shards of a transcribe or prep-lips run wrote into OUT (run.shard-I-of-N.jsonl, "
    "prep.shard-I-of-N.jsonl, and run.jsonl / prep.jsonl when there) into OUT/run.jsonl / OUT/prep.jsonl: one "
    "line per input, the last one written winning, sorted by id. Prints the counts one run over all the inputs "
    "prints. With --inputs (the shards' inputs), the inputs no log has are listed.\n\n"
    "Exit codes: 0 every input done; 3 some failed or are in no log; 4 none done; 2 bad arguments or no log in "
    "OUT. Guide: docs/cluster.md."
)


def _listed(ids: list[str]) -> str:
    return ", ".join(map(one_line, ids[:10])) + (", ..." if len(ids) > 10 else "")


@app.command("merge", help=MERGE_HELP, short_help="Merge the shard logs of a transcribe or prep-lips run into one run's log.")
@reports_errors
def merge(
    output: Annotated[Path, typer.Argument(metavar="OUT", help="The output folder the shards wrote to (their -o).", show_default=False)],
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--inputs",
            help="The shards' inputs, as given to them (files, directories, globs, @list.txt; repeat the option for several): "
            "those in no log are listed.",
            show_default=False,
        ),
    ] = None,
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive", help="Search --inputs directories recursively.")] = True,
) -> int:
    from ..inputs import collect_inputs
    from ..lips.prep import RECORDS_FILE
    from ..runs import error_code, merge_logs, write_merged
    from ..writers import OutputFolder

    # What each log counts, worded as the command that writes it words its summary.
    counts = {
        OutputFolder.LOG: ("inputs done", "media_seconds", "{:.1f} s of media"),
        RECORDS_FILE: ("clips prepared", "frames", "{:.0f} frames"),
    }

    if not output.is_dir():
        raise InputError(f"{output}: not a directory; give the output folder (-o) the shards wrote to")
    items = collect_inputs(inputs, exclude=output, recursive=recursive) if inputs else None
    code = ExitCode.OK
    for merged in merge_logs(output, items):
        try:
            write_merged(merged)
        except OSError as error:
            raise InputError(
                f"{merged.log}: cannot write the merged log ({error.strerror or error}); check the folder's permissions"
            ) from None
        if merged.unreadable:
            warning_line(f"{merged.unreadable} lines of the logs in {output} are not records (a task killed while writing?); left out")
        what, key, amount = counts[merged.log.name]
        failed = merged.failed
        total = len(merged.records) + len(merged.missing)
        done = len(merged.records) - len(failed)
        summary = f"runs merge: {done} of {total} {what} ({amount.format(merged.total(key))}"
        summary += f", {merged.skipped} already done" if merged.skipped else ""
        print(summary + f"); {len(merged.sources)} logs merged into {merged.log}", file=sys.stderr)
        if failed:
            print(f"runs merge: {len(failed)} failed: " + _listed([f"{r['id']} ({error_code(r)})" for r in failed]), file=sys.stderr)
        if merged.missing:
            print(f"runs merge: {len(merged.missing)} in no log: {_listed(merged.missing)}; rerun their shards", file=sys.stderr)
        if merged.absent_shards:  # a warning only: a shard that held no inputs writes no log either
            warning_line(
                f"no log of shard {_listed(merged.absent_shards)} in {output}: a shard not run yet, or one that held no inputs; "
                "--inputs lists any input no log has"
            )
        if len(merged.counts) > 1:
            counts_seen = " and ".join(map(str, merged.counts))
            warning_line(f"the logs in {output} come from runs split {counts_seen} ways: an input in several keeps the line of the last")
        if failed or merged.missing:
            code = max(code, ExitCode.ALL_FAILED if done == 0 else ExitCode.PARTIAL)
    return code
