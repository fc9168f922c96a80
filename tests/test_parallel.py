"""How many workers a job gets (parallel.worker_count): `--workers auto`, the default of transcribe and prep-lips."""

from __future__ import annotations

import pytest
from helpers import run_cli

from omniavsr_cli import parallel
from omniavsr_cli.errors import UsageError
from omniavsr_cli.lips.prep import prepare
from omniavsr_cli.transcribe import TranscribeOptions

GB = 1 << 30


@pytest.fixture
def machine(monkeypatch):
    """A machine of `cores` cores and `memory` bytes available, as worker_count sees it."""

    def _machine(cores: int, memory: int | None) -> None:
        monkeypatch.setattr(parallel, "usable_cores", lambda: cores)
        monkeypatch.setattr(parallel, "available_memory", lambda: memory)

    return _machine


def test_auto_gives_a_worker_per_core_only_where_each_has_several_inputs(machine):
    machine(8, 64 * GB)
    assert parallel.worker_count("auto", 1) == 1
    assert parallel.worker_count("auto", parallel.INPUTS_PER_WORKER * 2 - 1) == 1, "too few inputs to repay a second process"
    assert parallel.worker_count("auto", parallel.INPUTS_PER_WORKER * 3) == 3
    assert parallel.worker_count("auto", 1000) == 8, "never more than the cores"


def test_auto_stays_within_the_memory_available(machine):
    machine(8, 3 * parallel.WORKER_BYTES + GB // 2)
    assert parallel.worker_count("auto", 1000) == 3
    machine(8, GB // 2)
    assert parallel.worker_count("auto", 1000) == 1, "always at least one worker"
    machine(4, None)  # no figure for the memory: the cores decide
    assert parallel.worker_count("auto", 1000) == 4


def test_a_number_of_workers_is_kept_but_never_more_than_the_inputs():
    assert parallel.worker_count(3, 10) == 3
    assert parallel.worker_count(3, 2) == 2


def test_the_machine_s_figures_are_real_numbers():
    assert parallel.usable_cores() >= 1
    memory = parallel.available_memory()
    assert memory is None or memory > 0


@pytest.mark.parametrize("workers", [0, -1, "many", 1.5, True])
def test_a_bad_number_of_workers_is_a_usage_error_naming_the_parameter(workers, tmp_path):
    with pytest.raises(UsageError, match="workers"):
        TranscribeOptions(workers=workers)
    with pytest.raises(UsageError, match="workers"):
        prepare([], tmp_path / "rois", workers=workers)
    assert not (tmp_path / "rois").exists(), "nothing is made before the arguments are checked"


@pytest.mark.parametrize("command", ["transcribe", "prep-lips"])
def test_the_command_line_takes_auto_or_a_number_and_names_the_flag_otherwise(command, tmp_path):
    result = run_cli(command, str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "out"), "--workers", "two")
    assert result.returncode == 2
    error = result.stderr.decode()
    assert "--workers 'two': give a number of at least 1, or 'auto'" in error and "Traceback" not in error
    assert not (tmp_path / "out").exists(), "nothing is made before the arguments are checked"
    assert "N|auto" in run_cli(command, "--help").stdout.decode()
