"""The console script as a user meets it: help, version, and one-line errors with documented exit codes."""

from conftest import run_cli

from omniavsr_cli import __version__
from omniavsr_cli.errors import ExitCode


def test_help_lists_every_subcommand_with_a_one_line_help():
    result = run_cli("--help")
    assert result.returncode == 0
    out = result.stdout.decode()
    assert "score" in out and "Word and character error rates" in out
    assert "doctor" in out and "Check this machine" in out


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"omniavsr {__version__}"


def test_unknown_option_is_a_usage_error():
    result = run_cli("score", "--no-such-option")
    assert result.returncode == ExitCode.USAGE


def test_missing_file_is_one_line_without_traceback(write, tmp_path):
    result = run_cli("score", str(tmp_path / "nope.txt"), str(write("ref.txt", "a b\n")))
    assert result.returncode == ExitCode.USAGE
    err = result.stderr.decode()
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "nope.txt: no such file" in err


def test_python_module_entry_point_matches_the_console_script():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "omniavsr_cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"omniavsr {__version__}"
