"""omniavsr doctor: real checks of this environment, failures with fixes, and the readiness exit code."""

import importlib.metadata
import json
import shutil

import pytest
import torch
from helpers import run_cli
from safetensors.torch import load_file, save_file

from omniavsr_cli import doctor, weights
from omniavsr_cli.cli._errors import ExitCode
from omniavsr_cli.doctor import Check, is_ready, run_checks
from omniavsr_cli.media.ffmpeg import find_ffmpeg
from omniavsr_cli.model.loading import BaseModel, save_native
from omniavsr_cli.model.random_init import small_config


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

    assert checks["python"].ok
    # the distribution's version: torch.__version__ adds the build's label (+cpu, +cu130) where there is one
    assert checks["torch"].ok and checks["torch"].detail == importlib.metadata.version("torch")
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


def test_weights_check_finds_an_installed_default_model(monkeypatch, tmp_path, tiny_model):
    monkeypatch.setenv("OMNIAVSR_WEIGHTS", str(tmp_path))
    [check] = doctor.weights_checks()
    assert not check.ok and "is not in" in check.fix
    shutil.copytree(tiny_model, tmp_path / weights.DEFAULT_MODEL)
    [check] = doctor.weights_checks()
    assert check.ok and check.detail == f"{tmp_path}: {weights.DEFAULT_MODEL}"


def test_a_model_that_does_not_load_is_not_listed_as_usable_and_its_line_says_why(monkeypatch, tmp_path, tiny_model):
    monkeypatch.setenv("OMNIAVSR_WEIGHTS", str(tmp_path))
    usable = shutil.copytree(tiny_model, tmp_path / "usable")
    damaged = shutil.copytree(usable, tmp_path / weights.DEFAULT_MODEL)
    state = load_file(str(damaged / "model.safetensors"))
    name = next(n for n in state if "lora_A" in n)
    save_file(state | {name: torch.zeros(3, 3)}, str(damaged / "model.safetensors"))
    save_native(tmp_path / "orphan", small_config(), {name: state[name]}, base=BaseModel("gone", "0" * 64))
    checks = by_name(doctor.weights_checks())
    assert not checks["weights"].ok and checks["weights"].detail == f"{tmp_path}: usable"
    assert checks["weights"].fix == f"the default model '{weights.DEFAULT_MODEL}' does not load; see its line"
    assert checks[f"model {weights.DEFAULT_MODEL}"].fix.startswith(f"{damaged}/model.safetensors: weights do not match config.json")
    assert "base model gone (weights sha256 000000000000) is missing" in checks["model orphan"].fix
    assert not doctor.is_ready(list(checks.values()))


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
