"""The ``omniavsr`` command line (Typer).

One module per subcommand; each only parses arguments, calls the library and maps the outcome onto an
exit code (``omniavsr_cli.cli._errors.ExitCode``). Heavy libraries (torch, transformers) are imported inside
the commands, so ``omniavsr --help`` stays fast. Planned subcommands and their modules are listed in
docs/architecture.md.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from . import align_heads, bench, doctor, eval, prep_lips, runs, score, synth_corpus, train, transcribe, weights
from ._errors import OneLineUsageErrors

app = typer.Typer(
    name="omniavsr",
    cls=OneLineUsageErrors,
    help="Audio-visual speech recognition with Omni-AVSR: lip reading, audio, or both. Exit codes: docs/exit-codes.md.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"omniavsr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Global options; the subcommands do the work."""


app.command("transcribe", help=transcribe.HELP, short_help="Transcribe videos and audio: subtitles and transcripts out.")(
    transcribe.transcribe
)
app.command("score", help=score.HELP, short_help="Word and character error rates of transcripts against references.")(score.score)
app.command("prep-lips", help=prep_lips.HELP, short_help="Crop the mouth region of videos as the model was trained (96x96, 25 fps).")(
    prep_lips.prep_lips
)
app.command("train", help=train.HELP, short_help="Train Omni-AVSR on prep-lips data with the paper's recipe; resumable, multi-GPU.")(
    train.train
)
app.command("bench", help=bench.HELP, short_help="Time each transcription stage: real-time factor, tokens/s, peak memory.")(bench.bench)
app.command("eval", help=eval.HELP, short_help="Table I of the paper on a labelled set: WER per task and rate, and their average.")(
    eval.evaluate
)
app.command("align-heads", help=align_heads.HELP, short_help="Find the attention heads that time words; store them with the model.")(
    align_heads.align_heads
)
app.command("synth-corpus", help=synth_corpus.HELP, short_help="Make a synthetic audio-visual corpus (espeak-ng speech, a talking face).")(
    synth_corpus.synth_corpus
)
app.add_typer(weights.app, name="weights", help=weights.app.info.help)
app.add_typer(runs.app, name="runs", help=runs.app.info.help)
app.command("doctor", help=doctor.HELP, short_help="Check this machine: torch, device, ffmpeg, backends, weights.")(doctor.doctor)


def main() -> None:
    app(prog_name="omniavsr")
