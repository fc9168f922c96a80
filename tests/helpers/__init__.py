"""What the tests import (``from helpers import REPO, run_cli``); the fixtures are in tests/conftest.py.

``run_cli`` runs the command line inside the test process: torch, transformers and the CLI are imported once
per session instead of once per call (about a second each). It gives the command what a fresh process would
have, and puts everything back afterwards: ``sys.argv``, the three standard streams (fds 1 and 2 point at
temporary files, so native code, child processes and ``sys.__stderr__`` are captured too), the environment,
the working directory (the repository), the root logger (empty, so ``logging.basicConfig`` configures it),
Python's default warning filters printing to stderr, and torch's random state. ``run_cli_process`` starts the
console script for what only a real process shows: signals, broken pipes, the entry point, what gets imported.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Python's filters when started without -W or PYTHONWARNINGS (highest precedence first).
DEFAULT_WARNING_FILTERS = (
    ("default", DeprecationWarning, r"__main__\Z"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
)


def sigint_as_in_a_terminal() -> None:
    """Popen(preexec_fn=...) for a child the test interrupts: run from a background job (as shells start them, CI
    may too), the test process and its children inherit SIGINT ignored, and Python then leaves it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli_process(*args: str, input: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed console script as a user would (real process, real exit code, real streams)."""
    executable = shutil.which("omniavsr", path=str(Path(sys.executable).parent)) or "omniavsr"
    return subprocess.run([executable, *args], input=input, capture_output=True, env={**os.environ, **(env or {})}, cwd=REPO)


def run_cli(*args: str, input: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """``omniavsr ARGS`` in this process, as ``run_cli_process`` would run it: exit code, stdout and stderr bytes."""
    from omniavsr_cli import cli

    argv = ["omniavsr", *args]
    with _environment(env or {}), _standard_streams(input or b"") as output, _fresh_process_state(argv):
        try:
            cli.main()
            code = 0
        except SystemExit as exit:
            code = _exit_status(exit.code)
        except Exception:  # what the interpreter does with an exception nothing caught
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(argv, code, output["stdout"], output["stderr"])


def _exit_status(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


@contextlib.contextmanager
def _environment(overrides: dict):
    saved = dict(os.environ)
    previous = os.getcwd()
    os.environ.update(overrides)
    os.chdir(REPO)
    try:
        yield
    finally:
        os.chdir(previous)
        for name in set(os.environ) - set(saved):
            del os.environ[name]
        for name, value in saved.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


@contextlib.contextmanager
def _standard_streams(stdin: bytes):
    """fds 1 and 2 into temporary files, sys.stdin/stdout/stderr as an interpreter would open them on those fds."""
    output: dict[str, bytes] = {}
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    for stream in saved_streams[1:]:
        stream.flush()
    files = {fd: tempfile.TemporaryFile() for fd in (1, 2)}
    saved_fds = {fd: os.dup(fd) for fd in files}
    for fd, file in files.items():
        os.dup2(file.fileno(), fd)
    stdin_file = tempfile.TemporaryFile()
    stdin_file.write(stdin)
    stdin_file.seek(0)
    sys.stdin = io.TextIOWrapper(stdin_file, encoding=sys.__stdin__.encoding, errors=sys.__stdin__.errors)
    sys.stdout = open(1, "w", encoding=sys.__stdout__.encoding, errors=sys.__stdout__.errors, closefd=False)
    sys.stderr = open(2, "w", buffering=1, encoding=sys.__stderr__.encoding, errors="backslashreplace", closefd=False)
    # Libraries (torch, transformers) log through handlers made at their import, with the streams of that time.
    replacements = {
        id(saved_streams[1]): sys.stdout,
        id(sys.__stdout__): sys.stdout,
        id(saved_streams[2]): sys.stderr,
        id(sys.__stderr__): sys.stderr,
    }
    handlers = [handler for handler in _stream_handlers() if id(handler.stream) in replacements]
    previous = [handler.setStream(replacements[id(handler.stream)]) for handler in handlers]
    try:
        yield output
    finally:
        for handler, stream in zip(handlers, previous):
            handler.setStream(stream)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(ValueError, OSError):  # closed or broken by the command
                stream.flush()
        sys.stdin.close()
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        for fd, file in files.items():
            os.dup2(saved_fds[fd], fd)
            os.close(saved_fds[fd])
            file.seek(0)
            output["stdout" if fd == 1 else "stderr"] = file.read()
            file.close()


def _stream_handlers() -> list[logging.StreamHandler]:
    loggers = [
        logging.getLogger(),
        *(logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)),
    ]
    return [handler for logger in loggers for handler in logger.handlers if type(handler) is logging.StreamHandler]


@contextlib.contextmanager
def _fresh_process_state(argv: list[str]):
    """The rest of what a new process starts without and a finished one takes with it."""
    from omniavsr_cli.media.ffmpeg import find_ffmpeg

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_argv, saved_excepthook = sys.argv, sys.excepthook
    root.handlers[:] = []
    root.setLevel(logging.WARNING)
    sys.argv = argv
    find_ffmpeg.cache_clear()  # it remembers $OMNIAVSR_FFMPEG and $PATH
    with warnings.catch_warnings(), _torch_random_state():
        warnings.resetwarnings()
        for action, category, module in DEFAULT_WARNING_FILTERS:
            warnings.filterwarnings(action, category=category, module=module, append=True)
        warnings.showwarning = _show_warning
        try:
            yield
        finally:
            for handler in root.handlers:
                handler.close()
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)
            sys.argv, sys.excepthook = saved_argv, saved_excepthook
            find_ffmpeg.cache_clear()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _torch_random_state():
    """Commands seed torch where they use it; the seeding must not carry into the tests that run after them."""
    if "torch" not in sys.modules:
        yield
        return
    import torch

    with torch.random.fork_rng(devices=[]):
        yield
