"""Where model weights live and which are installed.

A model is a directory ``<weights dir>/<name>/`` holding ``config.json`` and safetensors weights (the
native format, docs/checkpoint-format.md). The weights directory is ``$OMNIAVSR_WEIGHTS`` if set, else the
``weights/`` folder of a source checkout, else ``$XDG_CACHE_HOME/omniavsr/weights``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .atomic import PART

DEFAULT_MODEL = "omni-avsr-st"


def bundled_dir() -> Path:
    """The source checkout's ``weights/`` folder, which ships the demo model (``--model demo``)."""
    return Path(__file__).resolve().parent.parent / "weights"


def weights_dir() -> Path:
    override = os.environ.get("OMNIAVSR_WEIGHTS")
    if override:
        return Path(override).expanduser()
    checkout = bundled_dir()
    if (checkout / "README.md").is_file():
        return checkout
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "omniavsr" / "weights"


def installed_models(directory: Path | None = None) -> list[str]:
    directory = directory or weights_dir()
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if (p / "config.json").is_file())


# ------------------------------------------------------------------ checksums: every model folder carries one


CHECKSUMS = "checksums.json"
_HASH_BLOCK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def is_tokenizer_file(name: str) -> bool:
    """A file of the tokenizer saved beside a model's weights."""
    return name.startswith("tokenizer") or name == "special_tokens_map.json"


def _model_file(name: str) -> bool:
    """A file the model is loaded from: its checksum must be listed (descriptive files such as a model card may not be)."""
    return name in ("config.json", "model.safetensors") or is_tokenizer_file(name)


def _files(directory: Path) -> list[Path]:
    """The files checksums.json covers: every plain file beside it but itself and unfinished ``.part`` writes."""
    return [p for p in sorted(directory.iterdir()) if p.is_file() and p.name != CHECKSUMS and not p.name.endswith(PART)]


def write_checksums(directory: Path) -> Path:
    sums = {p.name: sha256_of(p) for p in _files(directory)}
    path = directory / CHECKSUMS
    path.write_text(json.dumps(sums, indent=2) + "\n", encoding="utf-8")
    return path


def verify(directory: Path) -> list[str]:
    """Problems with an installed model's files (empty when every file the model is loaded from has a matching checksum)."""
    path = directory / CHECKSUMS
    fix = "re-import or re-download the model"
    if not path.is_file():
        return [f"{path}: missing; {fix}"]
    try:
        sums = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # unreadable, not UTF-8, not JSON
        return [f"{path}: damaged ({type(error).__name__}); {fix}"]
    if not isinstance(sums, dict) or not all(isinstance(value, str) for value in sums.values()):
        return [f"{path}: damaged (not an object of file names and sha256 sums); {fix}"]
    problems = []
    for name, expected in sums.items():
        file = directory / name
        # checksums.json names files of its own folder only: a path could make verify read files anywhere
        if name in ("", ".", "..") or Path(name).name != name or "\\" in name:
            problems.append(f"{path}: lists {name!r}, not a file name of this folder (damaged or tampered); {fix}")
        elif not file.is_file():
            problems.append(f"{file}: missing")
        else:
            try:
                if sha256_of(file) != expected:
                    problems.append(f"{file}: checksum mismatch (damaged or modified)")
            except OSError as error:
                problems.append(f"{file}: unreadable ({error.strerror or error})")
    unlisted = [p for p in _files(directory) if _model_file(p.name) and p.name not in sums]
    problems += [f"{file}: not listed in {CHECKSUMS}, so unchecked; {fix}" for file in unlisted]
    return problems
