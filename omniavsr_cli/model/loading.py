"""The native model format and ``load_model``.

A model is a directory: ``config.json`` (OmniAVSRConfig), ``model.safetensors`` (our parameter names; the
LLM's output matrix is tied to its input embeddings and stored once) and, when known, the tokenizer files.
docs/checkpoint-format.md describes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..atomic import PART, atomic_path
from ..errors import InputError, ModelUnavailable, OmniAVSRError, OutputError, UsageError, parameter
from ..weights import CHECKSUMS, bundled_dir, is_tokenizer_file, sha256_of, weights_dir, write_checksums
from .config import OmniAVSRConfig

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from ..decoding import DecodingOptions
    from .omni import Clip, OmniAVSR

DOMAIN_FILE = "domain.txt"  # beside a model's config.json: one line on the only inputs it understands
# What a model says about itself besides its tensors, config and tokenizer: a copy of the model carries them.
DESCRIPTIVE_FILES = (DOMAIN_FILE, "MODEL_CARD.md")

WEIGHTS_FILE = "model.safetensors"
TIED = "llm.lm_head.weight"
# safetensors metadata of a partial checkpoint: the model it applies to, and that model's weights checksum
BASE_KEY, BASE_SHA256_KEY = "omniavsr_base", "omniavsr_base_sha256"
EMBEDDINGS = "llm.model.embed_tokens.weight"
# A partial checkpoint stores the added tokens' embedding rows, not the whole matrix.
ADDED_ROWS, ADDED_IDS = "added_tokens.embeddings", "added_tokens.ids"


@dataclass(frozen=True)
class BaseModel:
    """The model a partial checkpoint applies to. ``reference`` is an installed model's name, or a path
    relative to the checkpoint's own directory (``../../init``), so a run directory can move or be copied
    anywhere with what it was trained from; never an absolute path, which exists on one machine only."""

    reference: str
    sha256: str  # of the base's model.safetensors: a different model found at the reference is refused


@dataclass
class LoadedModel:
    """What ``load_model`` returns: the weights as a plain ``nn.Module`` (:attr:`module`), with the tokenizer and
    the directory they came from. Text in and out goes through here; the module only sees token ids."""

    module: OmniAVSR
    tokenizer: PreTrainedTokenizerBase | None
    directory: Path | None = None  # None for a model built in memory (random_init)

    @property
    def config(self) -> OmniAVSRConfig:
        return self.module.config

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.module.parameters()).dtype

    def require_tokenizer(self) -> PreTrainedTokenizerBase:
        if self.tokenizer is None:
            raise ModelUnavailable(
                f"this model has no tokenizer files; import it again with {parameter('tokenizer')} (the Llama-3.2-1B tokenizer folder)",
                code="E_NO_TOKENIZER",
            )
        return self.tokenizer

    def generate_text(self, clips: list[Clip], task: str | list[str], rates: tuple[int, int], options: DecodingOptions) -> list[str]:
        """Each clip's transcript as text (special tokens dropped, no other clean-up, as upstream)."""
        tokenizer = self.require_tokenizer()
        return [
            tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            for ids in self.module.generate(clips, task, rates, options)
        ]

    def transcript_logprobs(self, clips: list[Clip], task: str | list[str], rates: tuple[int, int], texts: list[str]) -> list[torch.Tensor]:
        """Per-token log-probabilities of given transcripts (their tokens, then EOS), as the training loss sees them."""
        tokenizer = self.require_tokenizer()
        targets = [tokenizer(text, add_special_tokens=False).input_ids + [self.config.tokens.eos] for text in texts]
        return self.module.token_logprobs(clips, task, rates, targets)


def save_native(
    directory: Path,
    config: OmniAVSRConfig,
    state: dict[str, torch.Tensor],
    tokenizer: Path | None = None,
    base: BaseModel | None = None,
    files: Iterable[Path] = (),
) -> Path:
    """Write a model directory; with ``base``, ``state`` holds only the tensors that differ from that model,
    and loading overlays them on it. ``files`` are copied beside the weights (and checksummed with them)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().contiguous() for name, tensor in state.items() if name != TIED}
    metadata = {"format": "pt", "omniavsr_variant": config.variant}
    if base is not None:
        metadata |= {BASE_KEY: base.reference, BASE_SHA256_KEY: base.sha256}
    with atomic_path(directory / WEIGHTS_FILE) as partial:
        save_file(tensors, str(partial), metadata=metadata)
    config.save(directory)
    if tokenizer is not None:
        files = [*files, *(file for file in tokenizer.iterdir() if file.is_file() and is_tokenizer_file(file.name))]
    for file in files:
        shutil.copy2(file, directory / file.name)
    write_checksums(directory)
    return directory


def resolve(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if (path / "config.json").is_file():
        return path
    installed = weights_dir() / str(name_or_path)
    if (installed / "config.json").is_file():
        return installed
    bundled = bundled_dir() / str(name_or_path)  # the demo model, even when OMNIAVSR_WEIGHTS points elsewhere
    if (bundled / "config.json").is_file():
        return bundled
    places: dict[Path, Path] = {}  # each place once: a name can be its own installed path (OMNIAVSR_WEIGHTS=.)
    for place in (path, installed, bundled):
        places.setdefault((place / "config.json").resolve(), place / "config.json")
    raise ModelUnavailable(
        f"{name_or_path}: no such model (looked for {' and '.join(map(str, places.values()))}); "
        f"run `{parameter('omniavsr_cli.weights.installed_models')}` to see what is installed"
    )


def default_device_and_dtype(device: str | None, dtype: torch.dtype | None) -> tuple[torch.device, torch.dtype]:
    """bf16 on a GPU (as the released weights were trained), fp32 on CPU (2-4x faster than bf16 there)."""
    try:
        chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        torch.empty(0, device=chosen)  # a device this torch was not built for, or that is not there, fails here
    except (RuntimeError, AssertionError) as error:
        raise UsageError(
            f"{parameter('device')} {device}: not usable here ({first_line(error)}); try {parameter('device')} cpu", code="E_DEVICE"
        ) from None
    return chosen, dtype or (torch.bfloat16 if chosen.type == "cuda" else torch.float32)


def gpu_indices(devices: str) -> list[int]:
    """The GPUs of a several-device spec: ``all``, or ``cuda:0,cuda:1`` (one model on each; the Ray path)."""
    available = torch.cuda.device_count()
    if devices == "all":
        chosen = list(range(available))
    else:
        try:
            chosen = [int(part.strip().removeprefix("cuda:")) for part in devices.split(",") if part.strip()]
        except ValueError:
            raise UsageError(f"{parameter('device')} {devices}: give all, or GPUs as cuda:0,cuda:1", code="E_DEVICE") from None
    if not chosen or any(index >= available or index < 0 for index in chosen) or len(set(chosen)) != len(chosen):
        raise UsageError(
            f"{parameter('device')} {devices}: this machine has {available} GPU(s); give each of them at most once", code="E_DEVICE"
        )
    return chosen


def load_model(
    name_or_path: str | Path, device: str | None = None, dtype: torch.dtype | None = None, attn_implementation: str = "sdpa"
) -> LoadedModel:
    """The model in ``name_or_path`` (a directory, or a name under the weights directory), ready for inference.

    On the ``meta`` device only config.json and the safetensors headers are read: every check of the files
    (the config, each tensor's name and shape, the base of a partial checkpoint) without the weights' bytes."""
    from .omni import OmniAVSR

    directory = resolve(name_or_path)
    config = load_config(directory)
    target_device, target_dtype = default_device_and_dtype(device, dtype)
    state = load_state(directory, headers_only=target_device.type == "meta")
    try:
        with torch.device("meta"):
            model = OmniAVSR(config, attn_implementation)
    except (TypeError, ValueError) as error:  # values of the wrong type or size, e.g. a text for a layer count
        raise ModelUnavailable(
            f"{directory / 'config.json'}: does not describe a model that can be built ({first_line(error)}); "
            "import or download the model again",
            code="E_CHECKPOINT",
        ) from None
    for name in [n for n in state if n.startswith("prompt_")]:  # their length is the prompt's token count
        setattr(model, name, state.pop(name))
    _check_tensors(directory, state, model.state_dict())
    model.load_state_dict(state, strict=False, assign=True)
    model.llm.tie_weights()
    # Non-persistent buffers (RoPE frequencies) are not in the file: rebuild them off the meta device.
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    model.llm.model.rotary_emb = LlamaRotaryEmbedding(config=model.llm.config)
    model.freeze_backbones()
    try:
        tokenizer = load_tokenizer(directory)
    except Exception as error:  # transformers and tokenizers raise many kinds for a damaged file
        raise ModelUnavailable(
            f"{directory / 'tokenizer.json'}: not a usable tokenizer ({first_line(error)}); import or download the model again",
            code="E_CHECKPOINT",
        ) from None
    return LoadedModel(model.to(device=target_device, dtype=target_dtype).eval(), tokenizer, directory)


def first_line(error: Exception, describe: Callable[[OmniAVSRError], str] = str) -> str:
    """An exception's message as one line of a one-line error; ``describe`` words omniavsr's own errors."""
    text = describe(error) if isinstance(error, OmniAVSRError) else str(error)
    return (text.strip().splitlines() or [type(error).__name__])[0][:200]


def load_config(directory: Path) -> OmniAVSRConfig:
    try:
        return OmniAVSRConfig.load(directory)
    except (OSError, ValueError) as error:  # unreadable, not JSON, unknown keys or values
        raise ModelUnavailable(
            f"{directory / 'config.json'}: not a usable model config ({first_line(error)}); import or download the model again",
            code="E_CHECKPOINT",
        ) from None


def _check_tensors(directory: Path, state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """The weights must be exactly the tensors config.json describes, each of its shape and kind."""

    def kind(tensor: torch.Tensor) -> str:
        return f"{tuple(tensor.shape)} {'floating point' if tensor.is_floating_point() else 'integer'}"

    missing = [name for name in expected if name not in state and name != TIED and not name.startswith("prompt_")]
    unexpected = [name for name in state if name not in expected]
    wrong = [name for name in state if name in expected and kind(state[name]) != kind(expected[name])]
    if missing or unexpected or wrong:
        example = (
            f"{wrong[0]} is {kind(state[wrong[0]])}, config.json needs {kind(expected[wrong[0]])}" if wrong else (missing + unexpected)[0]
        )
        raise ModelUnavailable(
            f"{directory / WEIGHTS_FILE}: weights do not match config.json ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(wrong)} of another shape or type, e.g. {example}); import or download the model again",
            code="E_CHECKPOINT",
        )


def weights_sha256(directory: Path) -> str:
    """The sha256 of a model's weights file, from its checksums.json when it has one (a 4.6 GB file takes
    seconds to hash)."""
    try:
        return json.loads((directory / CHECKSUMS).read_text(encoding="utf-8"))[WEIGHTS_FILE]
    except (OSError, ValueError, KeyError, TypeError):
        return sha256_of(directory / WEIGHTS_FILE)


def load_state(directory: Path, base: Path | None = None, headers_only: bool = False) -> dict[str, torch.Tensor]:
    """Every tensor of the model in ``directory``: a partial checkpoint is overlaid on its base model (found
    where the checkpoint says, or in ``base`` when given). ``headers_only``: tensors on the meta device, of
    the files' names, shapes and dtypes, none of their bytes read."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = directory / WEIGHTS_FILE
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            if headers_only:
                state = {name: _header_tensor(handle.get_slice(name)) for name in handle.keys()}
        if not headers_only:
            state = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise ModelUnavailable(f"{path}: unreadable ({error}); import or download the model again", code="E_CHECKPOINT") from None
    reference, sha256 = metadata.get(BASE_KEY), metadata.get(BASE_SHA256_KEY)
    if reference is None:
        return state
    named = f"{reference} (weights sha256 {sha256[:12]})" if sha256 else reference
    fix = (
        f"or flatten it where its base is: {parameter('omniavsr_cli.model.loading.merge')} {directory} "
        f"{parameter('base')} BASE_DIR {parameter('output')} NEW_DIR"
    )
    found = Path(base) if base is not None else _base_directory(directory, reference)
    if found is None or not (found / WEIGHTS_FILE).is_file():
        raise ModelUnavailable(
            f"{directory}: a partial checkpoint (only the tensors training changed) whose base model {named} "
            f"is missing; install that model or put it back where the checkpoint names it, {fix}",
            code="E_CHECKPOINT",
        )
    if sha256 and weights_sha256(found) != sha256:
        raise ModelUnavailable(
            f"{directory}: {found} is not its base model {named}: its weights differ; put the model it was trained from there, {fix}",
            code="E_CHECKPOINT",
        )
    return overlay(load_state(found, headers_only=headers_only), state)


# safetensors' dtype names; the float8 kinds, not listed, stand in as float32 (a header check looks at shapes and floating point)
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _header_tensor(entry) -> torch.Tensor:
    return torch.empty(entry.get_shape(), dtype=_DTYPES.get(entry.get_dtype(), torch.float32), device="meta")


def _base_directory(directory: Path, reference: str) -> Path | None:
    if reference.startswith(("../", "./")):
        return directory / reference
    if os.path.isabs(reference):  # checkpoints written before bases were named relatively
        return Path(reference)
    try:
        return resolve(reference)
    except ModelUnavailable:
        return None


def overlay(full: dict[str, torch.Tensor], changed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A base model's tensors with a partial checkpoint's laid over them (its added-token rows written into
    the embedding matrix)."""
    changed = dict(changed)
    if ADDED_ROWS in changed:
        ids, rows = changed.pop(ADDED_IDS), changed.pop(ADDED_ROWS)
        if EMBEDDINGS not in changed:
            full[EMBEDDINGS] = full[EMBEDDINGS].clone()
            full[EMBEDDINGS][ids] = rows.to(full[EMBEDDINGS].dtype)
    full.update(changed)
    return full


def merge(partial: str | Path, output: Path, base: Path | None = None) -> Path:
    """Write the model ``partial`` names as a complete model in ``output``: every tensor, no base model, so
    the directory can be copied anywhere. ``base`` says where the base model is when it is not where the
    checkpoint names it."""
    directory = resolve(partial)
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InputError(f"{output}: already exists; give a new directory for the complete model")
    config = load_config(directory)
    state = load_state(directory, base)

    def cannot_write(error: OSError) -> OutputError:
        reason = error.strerror or error
        return OutputError(
            f"{output}: cannot write the model there ({reason}); give {parameter('output')} a new directory where you can write"
        )

    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        # A whole directory, made beside the output and renamed when complete. Always a new one made here:
        # a fixed name (OUTPUT.part) could be a folder of the user's, which a retry would delete.
        staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}-", suffix=PART))
    except OSError as error:
        raise cannot_write(error) from None
    try:
        save_native(
            staging,
            config,
            state,
            tokenizer=directory if (directory / "tokenizer.json").is_file() else None,
            files=[directory / name for name in DESCRIPTIVE_FILES if (directory / name).is_file()],
        )
        staging.rename(output)  # replaces an empty output directory; one that filled up meanwhile stops it
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)  # made by this call, never the user's
        if isinstance(error, OSError):
            raise cannot_write(error) from None
        raise
    return output


def load_tokenizer(directory: Path):
    """The tokenizer saved beside the weights, or None when the model was imported without one."""
    if not (directory / "tokenizer.json").is_file():
        return None
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if (directory / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(directory)
    return PreTrainedTokenizerFast(tokenizer_file=str(directory / "tokenizer.json"))


def model_description(model: LoadedModel) -> dict:
    """Name, directory and weights checksum, so a transcript says exactly which weights made it."""
    directory = model.directory
    checksum = None
    if directory is not None and (directory / CHECKSUMS).is_file():
        with contextlib.suppress(OSError, ValueError):
            checksum = json.loads((directory / CHECKSUMS).read_text(encoding="utf-8")).get("model.safetensors")
    return {
        "name": directory.name if directory else None,
        "path": str(directory) if directory else None,
        "sha256": checksum,
        "variant": model.config.variant,
        "domain": model_domain(model),
    }


def model_domain(model: LoadedModel) -> str | None:
    """What a model trained on a narrow domain says of it (DOMAIN_FILE beside its weights); None for a general model."""
    with contextlib.suppress(OSError, TypeError, UnicodeDecodeError):
        return (Path(model.directory) / DOMAIN_FILE).read_text(encoding="utf-8").strip() or None
    return None
