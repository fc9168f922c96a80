"""omniavsr: audio-visual speech recognition with Omni-AVSR.

Public API (docs/python.md): ``load_model`` -> :class:`~omniavsr_cli.transcribe.Model`, whose ``transcribe`` and
``transcribe_many`` yield segments and per-input results. Imported on first use, so importing the package (and
``omniavsr --help``) does not pull in torch.
"""

__version__ = "0.1.0"
__all__ = ["load_model", "Model", "TranscribeOptions", "Segment", "Transcript", "InputDone"]


def __getattr__(name: str):
    if name in __all__:
        from . import transcribe

        return getattr(transcribe, name)
    raise AttributeError(f"module 'omniavsr_cli' has no attribute {name!r}")
