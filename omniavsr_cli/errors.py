"""Exit codes and the one exception type that carries a user-facing failure.

Every command maps its outcome onto :class:`ExitCode`; docs/exit-codes.md is the user-facing copy of this
table. Library code raises :class:`OmniAVSRError` (or a subclass) with a one-line message that names the
file and the fix; the CLI prints that line and exits with the error's code, never a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1  # a bug in omniavsr: the message asks for a report
    USAGE = 2  # bad arguments or unusable input files (click uses 2 for usage errors too)
    PARTIAL = 3  # some inputs failed, the others were processed
    ALL_FAILED = 4  # every input failed
    MODEL_UNAVAILABLE = 5  # the requested model's files are missing or unreadable
    OUT_OF_MEMORY = 6  # out of memory even after backing off
    NOT_READY = 7  # doctor: something the default transcription needs is missing
    INTERRUPTED = 130  # Ctrl-C / SIGINT, the shell convention


class OmniAVSRError(Exception):
    """A failure the user can act on.

    ``code`` is a stable identifier for scripts (it appears in JSON reports), ``exit_code`` is what the CLI
    exits with, and ``str(error)`` is the one-line message.
    """

    code = "E_INTERNAL"
    exit_code = ExitCode.INTERNAL

    def __init__(self, message: str, *, code: str | None = None, exit_code: ExitCode | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        if exit_code is not None:
            self.exit_code = exit_code


class InputError(OmniAVSRError):
    """An input file is missing, unreadable or malformed, or the inputs do not fit together."""

    code = "E_INPUT"
    exit_code = ExitCode.USAGE
