"""omniavsr doctor: real checks of this environment, failures with fixes, and the readiness exit code."""

import json

import pytest
from conftest import run_cli

from omniavsr_cli import doctor, weights
from omniavsr_cli.doctor import Check, is_ready, run_checks
from omniavsr_cli.errors import ExitCode
from omniavsr_cli.media.ffmpeg import find_ffmpeg


@pytest.fixture(autouse=True)
def fresh_ffmpeg_lookup():
    find_ffmpeg.cache_clear()
    yield
    find_ffmpeg.cache_clear()


def by_name(checks):
    return {check.name: check for check in checks}


def test_reports_python_torch_device_and_ffmpeg(monkeypatch, tmp_path):
    monkeypatch.setenv("OMNIAVSR_WEIGHTS", str(tmp_path))
    checks = by_name(run_checks())
    import torch

    assert checks["python"].ok
    assert checks["torch"].ok and checks["torch"].detail == torch.__version__
    assert checks["device"].detail.startswith(("CPU only", "CUDA", "Apple MPS"))
    assert checks["ffmpeg"].ok and checks["ffmpeg"].detail.split(" (")[1].startswith(("PATH", "imageio-ffmpeg"))
    assert checks["no torchaudio/torchvision/torchcodec"].ok


def test_every_failing_check_says_how_to_fix_it(monkeypatch, tmp_path):
    monkeypatch.setenv("OMNIAVSR_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("OMNIAVSR_FFMPEG", str(tmp_path / "no-ffmpeg"))
    checks = run_checks()
    failing = [c for c in checks if not c.ok]
    assert {"ffmpeg", "weights"} <= {c.name for c in failing}
    assert all(c.fix for c in failing)


def test_weights_check_finds_an_installed_default_model(monkeypatch, tmp_path):
    monkeypatch.setenv("OMNIAVSR_WEIGHTS", str(tmp_path))
    assert not doctor.weights_check().ok
    (tmp_path / weights.DEFAULT_MODEL).mkdir()
    (tmp_path / weights.DEFAULT_MODEL / "config.json").write_text("{}")
    check = doctor.weights_check()
    assert check.ok and weights.DEFAULT_MODEL in check.detail


def test_speech_check_names_the_wheel_or_the_fix(monkeypatch):
    import importlib.metadata
    import sys

    from omniavsr_cli.synthetic import speech

    check = doctor.speech_check()
    assert check.ok and not check.required
    assert check.detail.startswith(f"espeakng-loader {importlib.metadata.version('espeakng-loader')} wheel (libespeak-ng ")
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    monkeypatch.setattr(speech.ctypes.util, "find_library", lambda name: None)
    check = doctor.speech_check()
    assert not check.ok and check.detail == "libespeak-ng is not installed"
    assert check.fix == "pip install 'omniavsr[synth]' (or: apt-get install espeak-ng)"


def test_readiness_counts_only_required_checks():
    assert is_ready([Check("a", True, ""), Check("optional", False, "not installed", "pip install x", required=False)])
    assert not is_ready([Check("a", True, ""), Check("b", False, "broken", "fix it")])


def test_forbidden_package_check_names_the_uninstall(monkeypatch):
    real = doctor.importlib.util.find_spec
    monkeypatch.setattr(doctor.importlib.util, "find_spec", lambda name: object() if name == "torchvision" else real(name))
    check = doctor.forbidden_packages_check()
    assert not check.ok and check.fix == "pip uninstall -y torchvision"


def test_cli_json_output_and_not_ready_exit_code(tmp_path):
    result = run_cli("doctor", "--json", env={"OMNIAVSR_WEIGHTS": str(tmp_path)})
    assert result.returncode == ExitCode.NOT_READY
    document = json.loads(result.stdout)
    assert document["ready"] is False
    names = {c["name"] for c in document["checks"]}
    assert {"python", "torch", "device", "ffmpeg", "weights"} <= names
    assert all(c["fix"] for c in document["checks"] if not c["ok"])


def test_cli_plain_output_marks_failures_with_fixes(tmp_path):
    result = run_cli("doctor", env={"OMNIAVSR_WEIGHTS": str(tmp_path)})
    lines = result.stdout.decode().splitlines()
    assert lines[-1] == "not ready for the default transcription"
    weights_line = next(line for line in lines if "weights:" in line)
    assert weights_line.startswith("FAIL") and "-> fix:" in weights_line
