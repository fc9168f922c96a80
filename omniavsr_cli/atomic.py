"""Writing files so that a reader (or a resumed run) never sees half of one: everything the package writes is
written under a ``.part`` name beside its destination and renamed into place when complete."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

PART = ".part"


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to: renamed to ``path`` when the block ends, removed if it fails."""
    part = path.with_name(path.name + PART)
    try:
        yield part
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """UTF-8 text, written atomically."""
    with atomic_path(path) as part:
        part.write_text(text, encoding="utf-8")
