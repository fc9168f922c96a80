"""Known models, where their files come from, and downloading them with resume and checksum checks.

The registry is ``registry.json`` in the package (``$OMNIAVSR_REGISTRY`` points at another one). A model
lists native-format files (``config.json``, ``model.safetensors``, tokenizer files) with a URL and a
sha256 each. The released Omni-AVSR checkpoints have no stable download URL: their entries say which file to
fetch by hand and how to import it. Every installed model gets a ``checksums.json`` (written by download and
by import) that ``omniavsr weights verify`` checks.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .atomic import PART
from .errors import InputError, ModelUnavailable, UsageError, parameter
from .weights import sha256_of, weights_dir, write_checksums

CHUNK = 1 << 20


class RegistryError(ModelUnavailable):
    """A registered model that cannot be downloaded: offline, a failed or damaged download, or a manual step."""

    code = "E_MODEL"


@dataclass(frozen=True)
class ModelFile:
    name: str
    url: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class ModelEntry:
    name: str
    description: str
    variant: str = ""
    licence: str = ""
    source: str = ""
    files: tuple[ModelFile, ...] = field(default_factory=tuple)
    manual: str = ""


def registry() -> dict[str, ModelEntry]:
    override = os.environ.get("OMNIAVSR_REGISTRY")
    source = f"OMNIAVSR_REGISTRY={override}" if override else "the packaged registry.json"
    try:
        text = (
            Path(override).read_text(encoding="utf-8")
            if override
            else resources.files(__package__).joinpath("registry.json").read_text(encoding="utf-8")
        )
        models = json.loads(text)["models"]
        return {
            name: ModelEntry(name=name, **{**entry, "files": tuple(ModelFile(**f) for f in entry.get("files", []))})
            for name, entry in models.items()
        }
    except OSError as error:
        reason = error.strerror or error
    except ValueError as error:  # not UTF-8 or not JSON
        reason = f"not JSON: {str(error).splitlines()[0][:200]}"
    except (KeyError, TypeError, AttributeError) as error:  # no "models" object, or entries of unknown keys or kinds
        reason = f'not {{"models": {{NAME: {{"description": ..., "files": [...]}}}}}} ({type(error).__name__}: {error})'
    raise InputError(f"{source}: not a usable model registry ({reason}); fix that file or unset OMNIAVSR_REGISTRY", code="E_PARSE")


def entry(name: str) -> ModelEntry:
    known = registry()
    if name not in known:
        raise UsageError(
            f"{name}: not a known model; choose one of {', '.join(known)} ({parameter('omniavsr_cli.registry.registry')})", code="E_MODEL"
        )
    return known[name]


def _fetch(file: ModelFile, destination: Path, timeout: float) -> None:
    """Download ``file`` to ``destination``, resuming a previous ``.part`` with an HTTP Range request."""
    partial = destination.with_name(destination.name + PART)
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(file.url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = have and response.status == 206
            with partial.open("ab" if resumed else "wb") as out:
                while block := response.read(CHUNK):
                    out.write(block)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # the partial file is already complete
            pass
        else:
            raise RegistryError(f"{file.url}: HTTP {error.code}; try again later or fetch it by hand into {destination}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise RegistryError(
            f"{file.url}: cannot download ({reason}); rerun to resume, or fetch it by hand into {destination}", code="E_OFFLINE"
        ) from None
    if file.sha256 and sha256_of(partial) != file.sha256:
        partial.unlink()
        raise RegistryError(f"{file.url}: checksum mismatch after download (the file was deleted); rerun to fetch it again")
    partial.replace(destination)


def download(name: str, directory: Path | None = None, timeout: float = 30.0) -> Path:
    """Fetch a registered model into the weights directory; already complete files are kept."""
    model = entry(name)
    target = (directory or weights_dir()) / name
    if not model.files:
        raise RegistryError(
            f"{name} cannot be downloaded automatically: {model.manual.replace('WEIGHTS', str(target.parent))} (source: {model.source})"
        )
    target.mkdir(parents=True, exist_ok=True)
    for file in model.files:
        destination = target / file.name
        if destination.is_file() and (file.sha256 is None or sha256_of(destination) == file.sha256):
            continue
        _fetch(file, destination, timeout)
    write_checksums(target)
    return target
