"""``omniavsr doctor``: report what works here and how to fix what does not."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ._errors import ExitCode, message, reports_errors

HELP = (
    "Check this machine for everything omniavsr uses: Python, torch and its device (CUDA/MPS/CPU), the ffmpeg "
    "binary in use, the face-landmark and VAD backends, and the installed weights (each checked to load). Every failing line says how "
    "to fix it.\n\nExit codes: 0 when the default transcription can run; 7 when something it needs is missing."
)


@reports_errors
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON on stdout.")] = False,
) -> int:
    from ..doctor import is_ready, run_checks

    checks = run_checks(describe=message)
    ready = is_ready(checks)
    if as_json:
        json.dump({"ready": ready, "checks": [c.as_dict() for c in checks]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif sys.stdout.isatty():
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table("", "check", "result", "fix", title="omniavsr doctor")
        for check in checks:
            mark = "[green]ok[/]" if check.ok else ("[red]FAIL[/]" if check.required else "[yellow]missing[/]")
            table.add_row(mark, *map(escape, (check.name, check.detail, check.fix)))  # 'omniavsr[synth]' is no markup
        console = Console()
        console.print(table)
        console.print("[green]ready[/]" if ready else "[red]not ready for the default transcription[/]")
    else:
        for check in checks:
            mark = "ok" if check.ok else ("FAIL" if check.required else "missing")
            fix = f"  -> fix: {check.fix}" if check.fix else ""
            print(f"{mark:<8}{check.name}: {check.detail}{fix}")
        print("ready" if ready else "not ready for the default transcription")
    return ExitCode.OK if ready else ExitCode.NOT_READY
