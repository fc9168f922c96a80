"""Where model weights live and which are installed.

A model is a directory ``<weights dir>/<name>/`` holding ``config.json`` and safetensors weights (the
native format, docs/checkpoint-format.md). The weights directory is ``$OMNIAVSR_WEIGHTS`` if set, else the
``weights/`` folder of a source checkout, else ``$XDG_CACHE_HOME/omniavsr/weights``.
"""

from __future__ import annotations

import os
from pathlib import Path

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
