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


def write_checksums(directory: Path) -> Path:
    sums = {p.name: sha256_of(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != CHECKSUMS and not p.name.endswith(PART)}
    path = directory / CHECKSUMS
    path.write_text(json.dumps(sums, indent=2) + "\n", encoding="utf-8")
    return path


def verify(directory: Path) -> list[str]:
    """Problems with an installed model's files (empty when every checksum matches)."""
    path = directory / CHECKSUMS
    if not path.is_file():
        return [f"{path}: missing; re-import or re-download the model"]
    problems = []
    for name, expected in json.loads(path.read_text(encoding="utf-8")).items():
        file = directory / name
        if not file.is_file():
            problems.append(f"{file}: missing")
        elif sha256_of(file) != expected:
            problems.append(f"{file}: checksum mismatch (damaged or modified)")
    return problems
