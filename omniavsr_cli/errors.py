"""The exceptions the library raises, one class per kind of failure, each with a one-line message and a stable code.

Catch by kind (``except MediaError``), branch on ``error.code`` (``"E_CORRUPT"``; it also appears in JSON
reports and run logs). Messages name the file and the fix. Where a message names one of the caller's
arguments it writes :func:`parameter` ("rates", "max_chunk_s"): ``str(error)`` shows the Python name, and the
command line shows its flag instead (``--rates``), so the library never speaks in flags. Which exit code each
kind gets is the command line's business (``omniavsr_cli/cli/_errors.py``, docs/exit-codes.md).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable

_PARAMETER = re.compile("\0([A-Za-z_][A-Za-z0-9_.]*)\0")


def whole_number(value: object, least: int) -> bool:
    """Whether an option value is a whole number (numpy's too, never a bool) of at least ``least``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least


def finite_number(value: object) -> bool:
    """Whether an option value is a finite real number (numpy's too, never a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def parameter(name: str) -> str:
    """``name`` (an argument of a library function, or a library function itself, dotted: ``omniavsr_cli.model.loading.merge``)
    inside an error message.

    Marked with NUL bytes, which no file name or text a user gives can contain, so that only these are rewritten.
    """
    return f"\0{name}\0"


class OmniAVSRError(Exception):
    """A failure the user can act on. ``code`` is the stable identifier; ``str(error)`` the one-line message."""

    code = "E_INTERNAL"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code

    def render(self, name: Callable[[str], str]) -> str:
        """The message with each :func:`parameter` written as ``name(parameter)``."""
        return _PARAMETER.sub(lambda match: name(match.group(1)), str(self.args[0]) if self.args else "")

    def __str__(self) -> str:
        return self.render(lambda name: name)

    def __reduce__(self):  # errors cross process boundaries (workers); keep the code
        return _rebuild, (type(self), self.args[0] if self.args else "", self.code)


def _rebuild(kind: type[OmniAVSRError], message: str, code: str) -> OmniAVSRError:
    error = kind.__new__(kind)
    OmniAVSRError.__init__(error, message, code=code)
    return error


class UsageError(OmniAVSRError, ValueError):
    """An argument's value, or a combination of arguments, that cannot work (an unknown mode, rates the model
    was not trained with, a device that is not there)."""

    code = "E_USAGE"


class InputError(OmniAVSRError):
    """An input file is missing, unreadable or malformed, or the inputs do not fit together."""

    code = "E_INPUT"


class MediaError(InputError):
    """A media file that cannot be used: missing, not media, corrupt, without the stream asked for, too short
    (the codes are listed in omniavsr_cli/media/errors.py)."""

    code = "E_NOT_MEDIA"


class ClipFailed(InputError):
    """One clip could not be prepared for lip reading (no face in it, a landmarks file that does not match)."""

    code = "E_NO_FACE"


class ModelUnavailable(OmniAVSRError):
    """A model's (or a dependency's) files are missing, damaged or incomplete."""

    code = "E_NO_MODEL"


class OutOfMemory(OmniAVSRError):
    """Out of memory even after backing off to the smallest batch."""

    code = "E_OUT_OF_MEMORY"


class OutputError(OmniAVSRError):
    """An output could not be written (no space, no permission)."""

    code = "E_WRITE"


class Interrupted(OmniAVSRError):
    """The run was stopped (Ctrl-C); what was finished is kept."""

    code = "E_INTERRUPTED"
