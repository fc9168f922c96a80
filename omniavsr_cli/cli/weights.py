"""``omniavsr weights``: the installed models, and importing the released Omni-AVSR checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._errors import ExitCode, reports_errors

app = typer.Typer(help="Models: list, download, verify, and import the released Omni-AVSR checkpoints.", no_args_is_help=True)


@app.command("list", help="The known models (registry) and the installed ones, with where they live.")
@reports_errors
def list_models() -> int:
    from ..registry import registry
    from ..weights import bundled_dir, installed_models, weights_dir

    known = registry()  # a registry that cannot be read stops the listing before its first line
    installed = installed_models()
    bundled = set(installed_models(bundled_dir()))
    print(f"weights directory: {weights_dir()}")
    for name, model in known.items():
        state = "installed" if name in installed else "bundled" if name in bundled else "downloadable" if model.files else "manual import"
        print(f"{name:<16} {state:<13} {model.description}")
    for name in installed:
        if name not in known:
            print(f"{name:<16} {'installed':<13} (local model)")
    return 0


@app.command(
    "download",
    help="Download a registered model (resumes an interrupted download, checks sha256). "
    "Models without a download URL print exactly which file to fetch and how to import it (exit 5).",
)
@reports_errors
def download(
    name: Annotated[str, typer.Argument(help="Model name (omniavsr weights list).", show_default=False)],
    directory: Annotated[Path | None, typer.Option("--dir", help="Weights directory (default: the usual one).")] = None,
) -> int:
    from ..registry import download as fetch

    print(f"downloaded {name} -> {fetch(name, directory)}")
    return 0


@app.command("verify", help="Check the sha256 of every file of installed models (exit 5 when one is damaged).")
@reports_errors
def verify(
    names: Annotated[
        list[str] | None, typer.Argument(help="Model names or directories (default: all installed).", show_default=False)
    ] = None,
) -> int:
    from ..model.loading import resolve
    from ..weights import installed_models
    from ..weights import verify as check

    failed = 0
    for name in names or installed_models():
        problems = check(resolve(name))
        print(f"{name}: {'ok' if not problems else 'DAMAGED'}")
        for problem in problems:
            print(f"  {problem}")
        failed += bool(problems)
    return ExitCode.MODEL_UNAVAILABLE if failed else ExitCode.OK


@app.command(
    "merge",
    help="Flatten a model into a complete one: a partial checkpoint (what train writes as OUT/checkpoint-N, or OUT/model "
    "with --partial-model) overlaid on its base model, written to a new directory that holds every tensor and loads "
    "anywhere. Exit 2 when OUTPUT exists, 5 when the base model is missing or is not the one the checkpoint was trained from.",
)
@reports_errors
def merge(
    model: Annotated[str, typer.Argument(help="The partial model: a directory or an installed name.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="New directory for the complete model.", show_default=False)],
    base: Annotated[
        Path | None, typer.Option(help="Where the base model is, when not where the checkpoint names it.", show_default=False)
    ] = None,
) -> int:
    from ..model.loading import merge as flatten

    print(f"merged {model} -> {flatten(model, output, base)}: every tensor, no base model needed")
    return 0


@app.command(
    "import-official",
    help="Convert a released Omni-AVSR model_avg_*.pth into the native format (config.json + model.safetensors). "
    "The variant (S/T/ST), the number of rates and the projector layout are read from the keys; the file is "
    "loaded without running pickled code. Exit 5 when the file is damaged or does not fit the architecture.",
)
@reports_errors
def import_official(
    checkpoint: Annotated[Path, typer.Argument(help="The released .pth file.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write the model to.", show_default=False)],
    config: Annotated[Path | None, typer.Option(help="config.json overriding architecture sizes and rates.")] = None,
    tokenizer: Annotated[Path | None, typer.Option(help="A Llama-3.2 tokenizer directory to copy beside the weights.")] = None,
) -> int:
    from ..errors import InputError
    from ..model.config import OmniAVSRConfig
    from ..model.loading import save_native
    from ..model.official import convert, read_state_dict

    try:
        base = OmniAVSRConfig.load(config) if config else OmniAVSRConfig()
    except (OSError, ValueError) as error:
        raise InputError(f"{config}: not a usable config.json ({error})") from None
    if tokenizer is not None and not tokenizer.is_dir():
        raise InputError(f"{tokenizer}: not a directory; give the folder holding tokenizer.json")
    model_config, state = convert(read_state_dict(checkpoint), base)
    save_native(output, model_config, state, tokenizer)
    print(
        f"imported {checkpoint} -> {output}: variant {model_config.variant}, audio rates {list(model_config.audio_rates)}, "
        f"video rates {list(model_config.video_rates)}, projector LayerNorm {'yes' if model_config.projector_layernorm else 'no'}"
    )
    return 0
