"""Turning failures into one line on stderr and a documented exit code."""

from __future__ import annotations

import functools
import os
import re
import sys
import traceback
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path

import typer
from typer._click import exceptions as click  # typer (pinned) vendors click: its parser raises these
from typer.core import TyperGroup

from ..errors import InputError, Interrupted, ModelUnavailable, OmniAVSRError, OutOfMemory, OutputError, UsageError


class ExitCode(IntEnum):
    """The exit codes of every subcommand (docs/exit-codes.md)."""

    OK = 0
    INTERNAL = 1  # a bug in omniavsr: the message asks for a report
    USAGE = 2  # bad arguments or unusable input files (click uses 2 for usage errors too)
    PARTIAL = 3  # some inputs failed, the others were processed
    ALL_FAILED = 4  # every input failed
    MODEL_UNAVAILABLE = 5  # the requested model's files are missing or unreadable
    OUT_OF_MEMORY = 6  # out of memory even after backing off
    NOT_READY = 7  # doctor: something the default transcription needs is missing
    INTERRUPTED = 130  # Ctrl-C / SIGINT, the shell convention


BROKEN_PIPE = 141  # what a shell reports for a process ended by SIGPIPE (e.g. `omniavsr score ... | head`)

# Each kind of failure's exit code; an error takes the first of its classes (in method resolution order) listed here.
EXIT_CODES: dict[type[OmniAVSRError], ExitCode] = {
    UsageError: ExitCode.USAGE,
    InputError: ExitCode.USAGE,
    OutputError: ExitCode.USAGE,  # like an output directory that cannot be used
    ModelUnavailable: ExitCode.MODEL_UNAVAILABLE,
    OutOfMemory: ExitCode.OUT_OF_MEMORY,
    Interrupted: ExitCode.INTERRUPTED,
}


def exit_code(error: OmniAVSRError) -> int:
    """The exit code of a failure, from its kind."""
    for kind in type(error).__mro__:
        if kind in EXIT_CODES:
            return EXIT_CODES[kind]
    return ExitCode.INTERNAL  # a bare OmniAVSRError: a bug


# Library names the command line spells differently from "--" + the name with dashes.
FLAGS: dict[str, str] = {
    "hypothesis_format": "--format",  # score's HYP format (and REF's unless --ref-format)
    "snr_db": "--snr",
    "num_beams": "--beams",
    "threshold": "--vad-threshold",
    "noise_files": "--noise",
    "omniavsr_cli.model.loading.merge": "omniavsr weights merge",
    "omniavsr_cli.registry.registry": "omniavsr weights list",
    "omniavsr_cli.weights.installed_models": "omniavsr weights list",
}


def flag(name: str) -> str:
    """The command line's name for a library parameter (errors.parameter)."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def message(error: OmniAVSRError) -> str:
    """An error's one line as the command line says it: with its flags, not the Python parameter names."""
    return error.render(flag)


# Line breaks and the other C0 controls: a file name may hold them (and ESC sequences that move a terminal's cursor).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """``text`` with its control characters written as escapes (a newline as \\n), so that each problem stays one line."""
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def error_line(message: str) -> None:
    print(f"omniavsr: error: {one_line(message)}", file=sys.stderr)


def warning_line(message: str) -> None:
    print(f"omniavsr: warning: {one_line(message)}", file=sys.stderr)


def reports_errors(command: Callable[..., int | None]) -> Callable[..., None]:
    """Run a command; map its return value and any failure onto the exit code, never a traceback for a user mistake."""

    @functools.wraps(command)
    def run(*args, **kwargs) -> None:
        try:
            code = command(*args, **kwargs) or ExitCode.OK
        except OmniAVSRError as error:
            error_line(message(error))
            code = exit_code(error)
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


class OneLineUsageErrors(TyperGroup):
    """Command-line mistakes (unknown option, missing argument, bad value) as one line and exit 2, like every
    other error (docs/exit-codes.md), instead of click's usage text and framed box."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.NoArgsIsHelpError as nothing_asked:
            print(nothing_asked.ctx.get_help())
            code = ExitCode.USAGE
        except click.UsageError as mistake:
            given = kwargs.get("args") or (args[0] if args else None) or sys.argv[1:]
            error_line(usage_message(mistake, given))
            code = ExitCode.USAGE
        except click.ClickException as failure:
            error_line(failure.format_message())
            code = failure.exit_code
        except typer.Abort:
            error_line("interrupted")
            code = ExitCode.INTERRUPTED
        sys.exit(code if isinstance(code, int) else ExitCode.OK)


def usage_message(mistake: click.UsageError, given: list[str]) -> str:
    where = mistake.ctx.command_path if mistake.ctx is not None else "omniavsr"
    message = f"{where}: {mistake.format_message().rstrip('.')}"
    # `-notes.txt` reads as options -n -o ...: the fix is --, which the parser's own message never suggests
    dashed = next((arg for arg in given if arg.startswith("-") and arg != "--" and Path(arg).exists()), None)
    if dashed is not None:
        return f"{message}; {dashed} is a file: put -- before file names that start with '-' ({where} -- {dashed} ...)"
    return f"{message}; see {where} --help"
