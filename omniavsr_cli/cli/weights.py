"""``omniavsr weights``: the installed models, and importing the released Omni-AVSR checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._errors import reports_errors

app = typer.Typer(help="Models: list what is installed, import the released Omni-AVSR checkpoints.", no_args_is_help=True)


@app.command("list", help="List the installed models (directories with config.json under the weights directory).")
@reports_errors
def list_models() -> int:
    from ..weights import installed_models, weights_dir

    models = installed_models()
    print(f"weights directory: {weights_dir()}")
    for name in models:
        print(name)
    if not models:
        print("(no models installed; see docs/checkpoint-format.md to import one)")
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
