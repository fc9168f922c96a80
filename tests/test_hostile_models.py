"""Damaged model directories, missing models and unusable devices: one line each, the documented exit code."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from omniavsr_cli.cli import app
from omniavsr_cli.weights import bundled_dir

# a CUDA device this machine does not have, with or without a GPU
ABSENT_CUDA = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


def transcribe(model, tmp_path, *more):
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"")  # never read: the model fails to load first
    return CliRunner().invoke(app, ["transcribe", str(clip), "--mode", "asr", "-o", str(tmp_path / "out"), "--model", str(model), *more])


def _unknown_key(directory):
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps(config | {"bogus": 1}))


def _not_json(directory):
    (directory / "config.json").write_text("{not json")


def _wrong_shape(directory):
    state = load_file(str(directory / "model.safetensors"))
    name = next(n for n in state if "lora_A" in n)
    save_file(state | {name: torch.zeros(3, 3)}, str(directory / "model.safetensors"))


def _damaged_tokenizer(directory):
    (directory / "tokenizer.json").write_text("{not json")


@pytest.mark.parametrize(
    "damage, message",
    [
        (_unknown_key, "config.json: not a usable model config (unknown config keys: bogus)"),
        (_not_json, "config.json: not a usable model config (Expecting property name"),
        (_wrong_shape, "model.safetensors: weights do not match config.json (0 missing, 0 unexpected, 1 of another shape or type, e.g. "),
        (_damaged_tokenizer, "tokenizer.json: not a usable tokenizer ("),
    ],
)
def test_a_damaged_model_directory_is_one_line_and_exit_5(tiny_model, tmp_path, damage, message):
    model = shutil.copytree(tiny_model, tmp_path / "model")
    damage(model)
    result = transcribe(model, tmp_path)
    assert result.exit_code == 5 and result.stderr.count("\n") == 1, result.output
    assert f"{model}/{message}" in result.stderr and "download the model again" in result.stderr


def test_no_such_model_names_each_place_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMNIAVSR_WEIGHTS", ".")  # the relative name is also its installed path
    result = transcribe("nosuch", tmp_path)
    assert result.exit_code == 5, result.output
    assert f"(looked for nosuch/config.json and {bundled_dir() / 'nosuch' / 'config.json'})" in result.stderr


@pytest.mark.parametrize("command", ["transcribe", "bench"])
def test_an_absent_cuda_device_is_a_usage_error(tiny_model, tmp_path, command):
    if command == "transcribe":
        result = transcribe(tiny_model, tmp_path, "--device", ABSENT_CUDA)
    else:
        result = CliRunner().invoke(app, ["bench", "--model", "small", "--device", ABSENT_CUDA])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"omniavsr: error: --device {ABSENT_CUDA}: not usable here (") and "try --device cpu" in result.stderr
