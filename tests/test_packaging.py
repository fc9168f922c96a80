"""The dependency set stays deliberate: pinned torch, no CUDA wheels on a CPU machine, no torchaudio & co."""

import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tomllib

from helpers import REPO

FORBIDDEN = ("torchaudio", "torchvision", "torchcodec")


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_forbidden_packages_are_not_importable():
    for name in FORBIDDEN:
        assert importlib.util.find_spec(name) is None, f"{name} is installed; it breaks transformers here"


def test_no_installed_distribution_requires_a_forbidden_package():
    offenders = []
    for dist in importlib.metadata.distributions():
        for requirement in dist.requires or []:
            if "extra ==" in requirement:
                continue
            if _requirement_name(requirement) in FORBIDDEN:
                offenders.append(f"{dist.metadata['Name']} -> {requirement}")
    assert not offenders


def test_project_files_never_name_a_forbidden_package():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    assert not {_requirement_name(r) for r in declared} & set(FORBIDDEN)
    assert not any(name in (REPO / "constraints.txt").read_text() for name in FORBIDDEN)


def test_torch_is_pinned_and_installed_at_the_pin():
    pins = [line for line in (REPO / "constraints.txt").read_text().splitlines() if line.startswith("torch")]
    assert pins == ["torch==2.13.0"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]
    assert importlib.metadata.version("torch").split("+")[0] == "2.13.0"


def test_a_cpu_torch_comes_without_cuda_wheels():
    import torch

    if torch.version.cuda is not None:
        return  # a GPU box legitimately has the nvidia-* runtime wheels
    cuda_wheels = [
        dist.metadata["Name"]
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"].lower().startswith(("nvidia-", "cuda-", "triton"))
    ]
    assert cuda_wheels == []


def test_cli_import_and_help_do_not_load_heavy_libraries():
    code = (
        "import sys\n"
        "from omniavsr_cli.cli import app\n"
        "try:\n"
        "    app(['--help'], prog_name='omniavsr')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'whisper_normalizer') if m in sys.modules]\n"
        "print('heavy:' + ','.join(heavy), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Commands" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "heavy:"
