"""Errors by kind: what a Python caller catches, what str() says (Python names), and what the command line
makes of them (flags, exit codes as docs/exit-codes.md gives them)."""

import pickle
import re

import pytest
import torch
from helpers import REPO, run_cli
from safetensors.torch import save_file

from omniavsr_cli.cli._errors import ExitCode, exit_code, message
from omniavsr_cli.errors import (
    ClipFailed,
    InputError,
    Interrupted,
    MediaError,
    ModelUnavailable,
    OmniAVSRError,
    OutOfMemory,
    OutputError,
    UsageError,
)
from omniavsr_cli.lips.landmarks import BackendUnavailable
from omniavsr_cli.lips.precomputed import LandmarksFileError
from omniavsr_cli.media.probe import probe
from omniavsr_cli.model.loading import BASE_KEY, WEIGHTS_FILE, first_line, load_model, load_state, resolve
from omniavsr_cli.model.official import CheckpointError, read_state_dict
from omniavsr_cli.registry import RegistryError, entry
from omniavsr_cli.synthetic.speech import EspeakUnavailable

# a CUDA device this machine does not have, with or without a GPU
ABSENT_CUDA = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


def documented_exit_codes() -> dict[str, int]:
    """NAME -> code, from the table in docs/exit-codes.md."""
    text = (REPO / "docs" / "exit-codes.md").read_text(encoding="utf-8")
    return {name: int(code) for code, name in re.findall(r"^\| (\d+) \| ([A-Z_]+) \|", text, flags=re.MULTILINE)}


# Each kind (and the library's own subclasses) with the row of docs/exit-codes.md that covers it.
KINDS = {
    UsageError: "USAGE",
    InputError: "USAGE",
    MediaError: "USAGE",
    ClipFailed: "USAGE",
    LandmarksFileError: "USAGE",
    OutputError: "USAGE",
    ModelUnavailable: "MODEL_UNAVAILABLE",
    CheckpointError: "MODEL_UNAVAILABLE",
    RegistryError: "MODEL_UNAVAILABLE",
    BackendUnavailable: "MODEL_UNAVAILABLE",
    EspeakUnavailable: "MODEL_UNAVAILABLE",
    OutOfMemory: "OUT_OF_MEMORY",
    Interrupted: "INTERRUPTED",
    OmniAVSRError: "INTERNAL",
}


def test_exit_codes_are_the_documented_ones():
    assert {code.name: int(code) for code in ExitCode} == documented_exit_codes()


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_every_kind_of_error_exits_with_its_documented_code(kind):
    assert exit_code(kind("x")) == documented_exit_codes()[KINDS[kind]]


def test_an_unusable_device_is_named_as_the_parameter_in_python_and_as_the_flag_on_the_command_line():
    with pytest.raises(ValueError) as caught:  # a UsageError is a ValueError, too
        load_model("demo", device=ABSENT_CUDA)
    error = caught.value
    assert isinstance(error, UsageError) and error.code == "E_DEVICE"
    try:
        torch.empty(0, device=ABSENT_CUDA)
    except (RuntimeError, AssertionError) as torch_error:
        reason = first_line(torch_error)
    assert str(error) == f"device {ABSENT_CUDA}: not usable here ({reason}); try device cpu"
    assert message(error) == f"--device {ABSENT_CUDA}: not usable here ({reason}); try --device cpu"

    result = run_cli("transcribe", "examples/demo/grid-example.mp4", "--model", "demo", "--device", ABSENT_CUDA)
    assert result.returncode == 2
    assert result.stderr.decode() == f"omniavsr: error: --device {ABSENT_CUDA}: not usable here ({reason}); try --device cpu\n"


def test_library_functions_in_messages_are_commands_on_the_command_line():
    with pytest.raises(ModelUnavailable) as missing:
        resolve("no-such-model")
    assert "`omniavsr_cli.weights.installed_models`" in str(missing.value)
    assert "run `omniavsr weights list` to see what is installed" in message(missing.value)

    with pytest.raises(UsageError) as unknown:
        entry("no-such-model")
    assert str(unknown.value).endswith("(omniavsr_cli.registry.registry)")
    assert message(unknown.value).endswith("(omniavsr weights list)") and exit_code(unknown.value) == 2


def test_the_merge_fix_is_a_python_call_in_python_and_the_documented_command_on_the_command_line(tmp_path):
    # a partial checkpoint whose base model is not where it says
    save_file({"x": torch.zeros(1)}, str(tmp_path / WEIGHTS_FILE), metadata={"format": "pt", BASE_KEY: "../absent"})
    with pytest.raises(ModelUnavailable) as caught:
        load_state(tmp_path)
    assert str(caught.value).endswith(f"omniavsr_cli.model.loading.merge {tmp_path} base BASE_DIR output NEW_DIR")
    assert message(caught.value).endswith(
        f"omniavsr weights merge {tmp_path} --base BASE_DIR --output NEW_DIR"
    )  # docs/checkpoint-format.md


def test_media_errors_are_caught_as_input_errors(tmp_path):
    with pytest.raises(InputError) as caught:
        probe(tmp_path / "absent.mp4")
    assert isinstance(caught.value, MediaError) and caught.value.code == "E_NOT_FOUND"


def test_checkpoint_errors_are_caught_as_an_unavailable_model_and_a_missing_file_as_an_input_error(tmp_path):
    damaged = tmp_path / "model_avg_1.pth"
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailable) as caught:
        read_state_dict(damaged)
    assert isinstance(caught.value, CheckpointError) and caught.value.code == "E_CHECKPOINT"

    with pytest.raises(InputError) as missing:
        read_state_dict(tmp_path / "absent.pth")
    assert not isinstance(missing.value, ModelUnavailable) and missing.value.code == "E_NOT_FOUND"


def test_espeak_unavailable_survives_pickling_with_its_parts():
    # Speaker.say sends it back from a forked child through pickle
    error = pickle.loads(pickle.dumps(EspeakUnavailable("libespeak-ng is not installed", "apt-get install espeak-ng")))
    assert isinstance(error, ModelUnavailable) and error.code == "E_NO_ESPEAK"
    assert (error.problem, error.fix, str(error)) == (
        "libespeak-ng is not installed",
        "apt-get install espeak-ng",
        "libespeak-ng is not installed: apt-get install espeak-ng",
    )
