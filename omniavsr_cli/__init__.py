"""omniavsr: audio-visual speech recognition with Omni-AVSR.

Public API: ``load_model`` (omniavsr_cli.model.loading). It is imported on first use, so importing the
package (and ``omniavsr --help``) does not pull in torch.
"""

__version__ = "0.1.0"
__all__ = ["load_model"]


def __getattr__(name: str):
    if name == "load_model":
        from .model.loading import load_model

        return load_model
    raise AttributeError(f"module 'omniavsr_cli' has no attribute {name!r}")
