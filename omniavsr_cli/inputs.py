"""Turning command-line inputs (files, directories, globs, ``@list.txt``) into media files with stable ids.

A clip's id is its path without the extension, relative to what named it, so outputs mirror the input tree:
a directory's files are relative to the directory, a glob's matches to the glob's fixed leading folders,
a list's entries to their common folder, and a file named directly is just its own name.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .errors import InputError, UsageError, parameter

MEDIA_SUFFIXES = frozenset(
    ".mp4 .m4v .mkv .webm .mov .avi .mpg .mpeg .ts .m2ts .mts .flv .wmv .3gp .ogv .gif "
    ".wav .flac .mp3 .m4a .aac .ogg .oga .opus .wma".split()
)


@dataclass(frozen=True)
class InputFile:
    path: Path
    clip_id: str  # posix-style relative path without extension, e.g. "spk1/00001"


def _clip_id(path: Path, root: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def _scan(directory: Path, exclude: Path | None, recursive: bool = True) -> list[Path]:
    found = []
    for folder, subfolders, files in os.walk(directory):
        here = Path(folder)
        subfolders[:] = (
            []
            if not recursive
            else sorted(name for name in subfolders if not name.startswith(".") and (exclude is None or (here / name).resolve() != exclude))
        )
        found += [here / name for name in sorted(files) if not name.startswith(".") and Path(name).suffix.lower() in MEDIA_SUFFIXES]
    return found


def _glob_root(pattern: str) -> Path:
    parts = Path(pattern).parts
    fixed = parts[: next(i for i, part in enumerate(parts) if glob.has_magic(part))]
    return Path(*fixed) if fixed else Path(".")


def _expand(argument: str, exclude: Path | None, recursive: bool = True) -> list[InputFile]:
    path = Path(argument)
    if path.is_dir():
        files = _scan(path, exclude, recursive)
        if not files:
            raise InputError(f"{argument}: no media files in this directory (looked for {', '.join(sorted(MEDIA_SUFFIXES)[:6])}, ...)")
        return [InputFile(file, _clip_id(file, path)) for file in files]
    if glob.has_magic(argument) and not path.exists():
        root = _glob_root(argument)
        matches = sorted(Path(match) for match in glob.glob(argument, recursive=True) if Path(match).is_file())
        if not matches:
            raise InputError(f"{argument}: no files match this pattern")
        return [InputFile(match, _clip_id(match, root)) for match in matches]
    # A single file, or a missing one: the clip reports E_NOT_FOUND itself, so the other inputs still run.
    return [InputFile(path, path.with_suffix("").name)]


def _read_list(argument: str, exclude: Path | None, recursive: bool = True) -> list[InputFile]:
    list_path = Path(argument[1:])
    try:
        lines = list_path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise InputError(f"{list_path}: cannot read this input list ({error.strerror or error}); check the path after @") from None
    except UnicodeDecodeError:
        raise InputError(f"{list_path}: the input list is not UTF-8 text; give a text file with one path per line") from None
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not entries:
        raise InputError(f"{list_path}: the input list is empty")
    expanded = [item for entry in entries for item in _expand(entry, exclude, recursive)]
    # Entries named one by one are placed relative to their common folder, so the list mirrors a tree too.
    direct = [Path(entry) for entry in entries if not Path(entry).is_dir() and not glob.has_magic(entry)]
    if len(direct) < 2:
        return expanded
    common = Path(os.path.commonpath([str(p.absolute().parent) for p in direct]))
    relocated = {p: p.absolute().relative_to(common).with_suffix("").as_posix() for p in direct}
    return [InputFile(item.path, relocated.get(item.path, item.clip_id)) for item in expanded]


def collect_inputs(arguments: list[str], exclude: Path | None = None, recursive: bool = True) -> list[InputFile]:
    """Every media file the arguments name, in order, without duplicates; ``exclude`` is skipped in scans.

    ``recursive=False`` takes only the files directly inside a named directory.
    """
    excluded = exclude.resolve() if exclude is not None else None
    files: list[InputFile] = []
    for argument in arguments:
        files += _read_list(argument, excluded, recursive) if argument.startswith("@") else _expand(argument, excluded, recursive)
    unique: dict[Path, InputFile] = {}
    for item in files:
        unique.setdefault(item.path.absolute(), item)
    by_id: dict[str, Path] = {}
    for item in unique.values():
        if item.clip_id in by_id:
            same_folder = by_id[item.clip_id].parent.absolute() == item.path.parent.absolute()
            fix = (
                "rename one of them: outputs are named by the file name without its extension"
                if same_folder
                else "pass their common parent directory instead so the output mirrors the tree"
            )
            raise InputError(f"{by_id[item.clip_id]} and {item.path} would both be written as {item.clip_id!r}; {fix}")
        by_id[item.clip_id] = item.path
    return list(unique.values())


Item = TypeVar("Item")


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (1 to ``count``) of a batch split into ``count`` disjoint parts, as a job array's task."""

    index: int
    count: int

    def __post_init__(self):
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise self._invalid(f"{self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"``, as job arrays number their tasks (1-based)."""
        found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text, re.ASCII)
        if found is None:
            raise cls._invalid(text)
        return cls(int(found[1]), int(found[2]))

    @staticmethod
    def _invalid(given: str) -> UsageError:
        return UsageError(f"{parameter('shard')} {given}: give I/N with N at least 1 and I from 1 to N, e.g. 1/8")

    @property
    def name(self) -> str:
        """``shard-I-of-N``: what this part's own files are named with."""
        return f"shard-{self.index}-of-{self.count}"

    def holds(self, key: str) -> bool:
        # A hash of the item's name, not its place in the list: the parts stay the same however the inputs are
        # listed or ordered, and one input never lands in two parts. sha1, not hash(): the same in every process.
        digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).digest()
        return int.from_bytes(digest, "big") % self.count == self.index - 1


def shard(items: Sequence[Item], index: int, count: int, key: Callable[[Item], str] = lambda item: item.clip_id) -> list[Item]:
    """The ``items`` in part ``index`` (1-based) of ``count``, in their order; ``key`` names an item (an
    ``InputFile``'s clip id by default). Parts 1 to ``count`` together hold every item exactly once."""
    part = Shard(index, count)
    return [item for item in items if part.holds(key(item))]


STDIN = "-"
STDIN_ID = "stdin"


def spool_stdin(directory: Path, stream=None) -> InputFile:
    """Media piped on stdin, copied to a file in ``directory`` (probing needs to seek); its id is ``stdin``."""
    import shutil
    import sys

    source = stream if stream is not None else sys.stdin.buffer
    path = directory / "stdin.media"
    with path.open("wb") as handle:
        shutil.copyfileobj(source, handle, 1 << 20)
    if path.stat().st_size == 0:
        raise InputError("-: nothing arrived on stdin; pipe a media file in (e.g. `ffmpeg ... -f matroska - | omniavsr transcribe -`)")
    return InputFile(path, STDIN_ID)
