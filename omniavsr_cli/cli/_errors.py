"""Turning failures into one line on stderr and a documented exit code."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable

import typer

from ..errors import ExitCode, OmniAVSRError

BROKEN_PIPE = 141  # what a shell reports for a process ended by SIGPIPE (e.g. `omniavsr score ... | head`)


def error_line(message: str) -> None:
    print(f"omniavsr: error: {message}", file=sys.stderr)


def warning_line(message: str) -> None:
    print(f"omniavsr: warning: {message}", file=sys.stderr)


def reports_errors(command: Callable[..., int | None]) -> Callable[..., None]:
    """Run a command; map its return value and any failure onto the exit code, never a traceback for a user mistake."""

    @functools.wraps(command)
    def run(*args, **kwargs) -> None:
        try:
            code = command(*args, **kwargs) or ExitCode.OK
        except OmniAVSRError as error:
            error_line(str(error))
            code = error.exit_code
        except KeyboardInterrupt:
            error_line("interrupted")
            code = ExitCode.INTERRUPTED
        except BrokenPipeError:
            # The reader went away; silence the final flush of the closed stdout.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = BROKEN_PIPE
        except Exception as error:  # a bug: one line by default, the traceback on request
            if os.environ.get("OMNIAVSR_DEBUG"):
                traceback.print_exc()
            error_line(
                f"internal error: {type(error).__name__}: {error}. This is a bug in omniavsr; "
                "rerun with OMNIAVSR_DEBUG=1 for the traceback and report it"
            )
            code = ExitCode.INTERNAL
        raise typer.Exit(int(code))

    return run
