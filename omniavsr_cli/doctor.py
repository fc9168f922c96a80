"""``omniavsr doctor``: what works on this machine, what does not, and how to fix it.

Each :class:`Check` says whether the default ``transcribe`` needs it (``required``); the machine is ready
only when every required check passes.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

from . import weights
from .errors import OmniAVSRError

FORBIDDEN_PACKAGES = ("torchaudio", "torchvision", "torchcodec")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


def _version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def _import_check(module: str, distribution: str, fix: str, required: bool = True, name: str | None = None) -> Check:
    name = name or distribution
    if importlib.util.find_spec(module) is None:
        return Check(name, False, "not installed", fix, required)
    try:
        importlib.import_module(module)
    except Exception as error:  # any import-time failure is what the user needs to see
        message = f"{type(error).__name__}: {error}".splitlines()[0][:160]
        return Check(name, False, f"installed but does not import ({message})", fix, required)
    return Check(name, True, _version_of(distribution), required=required)


def python_check() -> Check:
    version = platform.python_version()
    ok = (3, 11) <= sys.version_info[:2] < (3, 13)
    return Check("python", ok, f"{version} ({sys.executable})", "" if ok else "use Python 3.11 or 3.12 (make PYTHON=python3.11 setup)")


def device_check() -> Check:
    import torch

    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        properties = torch.cuda.get_device_properties(index)
        detail = (
            f"CUDA {torch.version.cuda}: {properties.name}, {properties.total_memory / 2**30:.1f} GiB, "
            f"bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}"
        )
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        detail = "Apple MPS"
    else:
        detail = f"CPU only ({torch.get_num_threads()} threads); a GPU makes transcription much faster"
    return Check("device", True, detail, required=False)


def forbidden_packages_check() -> Check:
    present = [name for name in FORBIDDEN_PACKAGES if importlib.util.find_spec(name) is not None]
    if present:
        return Check(
            "no torchaudio/torchvision/torchcodec",
            False,
            f"installed: {', '.join(present)} (CUDA-linked builds break 'import transformers')",
            f"pip uninstall -y {' '.join(present)}",
        )
    return Check("no torchaudio/torchvision/torchcodec", True, "none installed")


def ffmpeg_check(describe: Callable[[OmniAVSRError], str] = str) -> Check:
    from .media.ffmpeg import ffmpeg_version, find_ffmpeg

    try:
        ffmpeg = find_ffmpeg()
        version = ffmpeg_version(ffmpeg)
    except OmniAVSRError as error:
        return Check("ffmpeg", False, describe(error), "apt-get install ffmpeg, or set OMNIAVSR_FFMPEG=/path/to/ffmpeg")
    except OSError as error:
        return Check("ffmpeg", False, f"does not run: {error}", "set OMNIAVSR_FFMPEG to a working ffmpeg binary")
    return Check("ffmpeg", True, f"{version} ({ffmpeg.source}: {ffmpeg.path})")


def speech_check() -> Check:
    from .synthetic.speech import EspeakUnavailable, Speaker, Voice

    try:
        speaker = Speaker()
        speaker.say("now", Voice("en-us", "", 160, 50, 50))  # the voice data loads, too
    except EspeakUnavailable as error:
        return Check("espeak-ng (synth-corpus)", False, error.problem, error.fix, required=False)
    return Check("espeak-ng (synth-corpus)", True, speaker.source, required=False)


def weights_checks(describe: Callable[[OmniAVSRError], str] = str) -> list[Check]:
    """The weights directory and the models installed there that load; a line for each that does not.

    Each model is loaded on the meta device: config.json and the safetensors headers (every tensor's name,
    shape and kind against the config, a partial checkpoint's base), none of the weights' bytes, so a
    multi-GB model takes as long as the 7 MB demo."""
    from .model.loading import first_line, load_model

    directory = weights.weights_dir()
    usable, broken = [], []
    for name in weights.installed_models(directory):
        try:
            load_model(directory / name, device="meta")
            usable.append(name)
        except Exception as error:  # whatever stops a load is what the user needs to see
            broken.append(Check(f"model {name}", False, "installed but does not load", first_line(error, describe), required=False))
    ok = weights.DEFAULT_MODEL in usable
    if ok:
        fix = ""
    elif any(check.name == f"model {weights.DEFAULT_MODEL}" for check in broken):
        fix = f"the default model '{weights.DEFAULT_MODEL}' does not load; see its line"
    else:
        fix = f"the default model '{weights.DEFAULT_MODEL}' is not in {directory}; see weights/README.md"
    return [Check("weights", ok, f"{directory}: {', '.join(usable) or 'no usable model'}", fix), *broken]


def run_checks(describe: Callable[[OmniAVSRError], str] = str) -> list[Check]:
    """Every check, in the order shown; ``describe`` words an error in a check (the command line passes one that names its flags)."""
    reinstall = "make setup (or: pip install -c constraints.txt -e .)"
    checks = [python_check(), _import_check("torch", "torch", reinstall)]
    if checks[-1].ok:
        checks.append(device_check())
    checks += [
        _import_check("transformers", "transformers", reinstall),
        _import_check("peft", "peft", reinstall),
        _import_check("jiwer", "jiwer", reinstall, name="jiwer (score)"),
        forbidden_packages_check(),
        ffmpeg_check(describe),
        _import_check("av", "av", reinstall, name="PyAV (media probing)"),
        _import_check(
            "mediapipe",
            "mediapipe",
            "pip install --no-deps mediapipe==0.10.21 (docs/install.md)",
            name="mediapipe (face landmarks, default)",
        ),
        _import_check("silero_vad", "silero-vad", "pip install silero-vad (docs/install.md)", name="silero-vad (voice activity)"),
        _import_check(
            "face_alignment",
            "face-alignment",
            "pip install --no-deps face-alignment==1.5.0 scikit-image numba (docs/prep-lips.md)",
            required=False,
            name="face-alignment (optional landmarks)",
        ),
        _import_check(
            "dlib", "dlib-bin", "pip install 'omniavsr[dlib]' (docs/install.md)", required=False, name="dlib (optional landmarks)"
        ),
        speech_check(),
        *weights_checks(describe),
    ]
    return checks


def is_ready(checks: list[Check]) -> bool:
    return all(check.ok for check in checks if check.required)
