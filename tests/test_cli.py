"""The console script as a user meets it: help, version, and one-line errors with documented exit codes."""

from helpers import run_cli, run_cli_process

from omniavsr_cli import __version__
from omniavsr_cli.cli._errors import ExitCode


def test_help_lists_every_subcommand_with_a_one_line_help():
    result = run_cli("--help")
    assert result.returncode == 0
    out = result.stdout.decode()
    assert "score" in out and "Word and character error rates" in out
    assert "doctor" in out and "Check this machine" in out


def test_version():
    result = run_cli_process("--version")  # the installed console script itself
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


def test_usage_errors_are_one_line_naming_the_command_and_its_help():
    for args, expected in (
        (("score",), "omniavsr: error: omniavsr score: Missing argument 'HYP'; see omniavsr score --help"),
        (("score", "a", "b", "--bogus"), "omniavsr: error: omniavsr score: No such option: --bogus; see omniavsr score --help"),
        (("weights", "merge", "x"), "omniavsr weights merge: Missing option '--output'"),
    ):
        result = run_cli(*args)
        err = result.stderr.decode()
        assert result.returncode == ExitCode.USAGE and err.count("\n") == 1 and expected in err, err
        assert not result.stdout


def test_a_file_name_starting_with_a_dash_gets_the_double_dash_hint(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from omniavsr_cli.cli import app

    (tmp_path / "-hyp.txt").write_text("a b\n")
    (tmp_path / "ref.txt").write_text("a b\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["score", "-hyp.txt", "ref.txt"])
    assert result.exit_code == ExitCode.USAGE
    assert "-hyp.txt is a file: put -- before file names that start with '-' (omniavsr score -- -hyp.txt ...)" in result.output
    assert CliRunner().invoke(app, ["score", "--", "-hyp.txt", "ref.txt"]).exit_code == ExitCode.OK


def test_no_arguments_prints_the_help():
    result = run_cli()
    assert result.returncode == ExitCode.USAGE and "transcribe" in result.stdout.decode() and not result.stderr


def test_the_meta_device_is_refused_by_every_command_that_runs_a_model(tmp_path):
    example = "examples/demo/grid-example.mp4"
    commands = [
        ("transcribe", example, "--model", "demo", "-o", str(tmp_path / "t")),
        ("bench", example, "--model", "demo"),
        ("eval", str(tmp_path / "none.csv"), "--model", "demo"),
        ("train", str(tmp_path / "none.csv"), "-o", str(tmp_path / "train")),
        ("align-heads", str(tmp_path / "none.csv"), "--word-times", str(tmp_path / "none.jsonl"), "--model", "demo"),
    ]
    for command in commands:
        result = run_cli(*command, "--device", "meta")
        err = result.stderr.decode()
        assert result.returncode == ExitCode.USAGE, (command[0], err)
        assert err.count("\n") == 1 and "--device meta: the meta device holds shapes but no weights" in err, (command[0], err)
    assert not (tmp_path / "t").exists() and not (tmp_path / "train").exists()
