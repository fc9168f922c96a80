"""What a fresh clone gets must not depend on the machine it was made on: every shipped model loads from an
empty place with no other model around, and no tracked file (text, or the header of a binary) names an
absolute path outside the repository."""

import io
import json
import re
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from omniavsr_cli.model import loading
from omniavsr_cli.weights import verify

REPO = Path(__file__).resolve().parent.parent
SHIPPED_MODELS = sorted(p.parent for p in (REPO / "weights").glob("*/config.json"))

# Top-level directories where a machine keeps its users' and jobs' files. System paths (/usr, /proc, /dev,
# /etc) are the same everywhere, and a placeholder such as /path/to names no machine.
PRIVATE_ROOTS = (
    "home",
    "root",
    "Users",
    "work",
    "workspace",
    "tmp",
    "var",
    "mnt",
    "media",
    "data",
    "scratch",
    "srv",
    "opt",
    "private",
    "nfs",
    "gpfs",
    "lustre",
)
ABSOLUTE = re.compile(
    rb"(?<![\w.~:/-])/(?:" + b"|".join(r.encode() for r in PRIVATE_ROOTS) + rb")/[\w.+-]+|\b[A-Za-z]:\\\\?(?:Users|home)\\"
)


def test_the_shipped_models_are_the_ones_this_checks():
    assert [p.name for p in SHIPPED_MODELS] == ["demo"]


@pytest.mark.parametrize("model", SHIPPED_MODELS, ids=lambda p: p.name)
def test_a_shipped_model_loads_when_copied_alone_to_an_empty_place(model, tmp_path, monkeypatch):
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setenv("OMNIAVSR_WEIGHTS", str(empty))
    monkeypatch.setattr(loading, "bundled_dir", lambda: empty)  # not even the checkout's weights/ to fall back on
    copy = shutil.copytree(model, tmp_path / "copy" / model.name)
    assert verify(copy) == []
    loaded = loading.load_model(copy)
    assert loaded.tokenizer is not None and loaded.directory == copy


def _tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO / name for name in listed.decode().split("\0") if name and (REPO / name).is_file()]


def _searchable(path: Path) -> list[bytes]:
    """The parts of a file that could name a path: a text file whole; a safetensors file's JSON header; an
    npz file's member names, array headers and string arrays; any other binary whole (mp4 metadata)."""
    data = path.read_bytes()
    if path.suffix == ".safetensors":
        (size,) = struct.unpack("<Q", data[:8])
        return [data[8 : 8 + size]]
    if path.suffix == ".npz":
        parts = []
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts += [name.encode() for name in archive.namelist()]
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            parts += [str(arrays[name].tolist()).encode() for name in arrays.files if arrays[name].dtype.kind in "US"]
        return parts
    return [data]


def test_no_tracked_file_names_an_absolute_path_outside_the_repository():
    # and this checkout's own location, wherever it is
    own = re.compile(rb"(?<![\w.~:/-])" + re.escape(str(REPO).encode()) + rb"(?![\w.+-])")
    found = []
    for path in _tracked_files():
        for part in _searchable(path):
            hits = {m.group().decode(errors="replace") for pattern in (ABSOLUTE, own) for m in pattern.finditer(part)}
            found += [f"{path.relative_to(REPO)}: {hit}" for hit in sorted(hits)]
    assert not found, "absolute paths of one machine in tracked files:\n" + "\n".join(found)


def _path(*parts: str, separator: str = "/") -> bytes:
    """A machine path put together here, so this file does not itself hold one."""
    return separator.join(parts).encode()


@pytest.mark.parametrize(
    "sample",
    [
        b"base " + _path("", "work", "demo", "coarse", "model"),
        b'{"omniavsr_base":"' + _path("", "home", "me", "run") + b'"}',
        _path("C:", "Users", "me", "model", separator="\\"),
        _path("", "tmp", "tmpab12", "x"),
    ],
)
def test_the_path_pattern_catches_machine_paths(sample):
    assert ABSOLUTE.search(sample)


@pytest.mark.parametrize(
    "sample",
    [
        b"#!" + _path("", "usr", "bin", "env") + b" bash",
        _path("", "proc", "self", "status"),
        _path("", "dev", "null"),
        b"--model ../../init",
        b"https://example.org" + _path("", "work", "x"),
    ],
)
def test_the_path_pattern_leaves_system_paths_and_urls_alone(sample):
    assert not ABSOLUTE.search(sample)


def test_the_safetensors_header_is_what_is_searched(tmp_path):
    import torch
    from safetensors.torch import save_file

    base = _path("", "work", "demo", "coarse", "model").decode()
    save_file({"x": torch.zeros(2)}, str(tmp_path / "m.safetensors"), metadata={loading.BASE_KEY: base})
    [header] = _searchable(tmp_path / "m.safetensors")
    assert json.loads(header)["__metadata__"][loading.BASE_KEY] == base
    assert ABSOLUTE.search(header)
