"""Matryoshka token compression and the per-rate projectors into the LLM's embedding space (omni-avsr.md §2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def compress(features: torch.Tensor, rate: int, mode: str = "avg-pooling") -> torch.Tensor:
    """(B, T, D) encoder features -> (B, T // rate, D) averages, or (B, T // rate, D * rate) stacks.

    Kernel = stride = rate and trailing frames that do not fill a window are dropped, as upstream.
    """
    if mode == "avg-pooling":
        return F.avg_pool1d(features.transpose(1, 2), rate).transpose(1, 2)
    if mode == "stack":
        batch, frames, dim = features.shape
        kept = frames // rate * rate
        return features[:, :kept].reshape(batch, kept // rate, dim * rate)
    raise ValueError(f"unknown compression mode {mode!r}")


def projector(input_size: int, hidden_size: int, output_size: int, layernorm: bool) -> nn.Sequential:
    """Linear -> ReLU -> Linear [-> LayerNorm]; module indices 0, 2 (3) match the official state-dict keys."""
    layers = [nn.Linear(input_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, output_size)]
    if layernorm:
        layers.append(nn.LayerNorm(output_size))
    return nn.Sequential(*layers)


class RateProjectors(nn.Module):
    """One projector per compression rate, indexed like the official ``audio_proj`` / ``video_proj`` lists."""

    def __init__(self, rates: tuple[int, ...], feature_size: int, hidden_size: int, output_size: int, mode: str, layernorm: bool):
        super().__init__()
        self.rates, self.mode = tuple(rates), mode
        self.projectors = nn.ModuleList(
            projector(feature_size * (rate if mode == "stack" else 1), hidden_size, output_size, layernorm) for rate in self.rates
        )

    def forward(self, features: torch.Tensor, rate: int) -> torch.Tensor:
        if rate not in self.rates:
            raise ValueError(f"rate {rate} is not one this model was trained with ({', '.join(map(str, self.rates))})")
        return self.projectors[self.rates.index(rate)](compress(features, rate, self.mode))
