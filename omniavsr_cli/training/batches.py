"""The batches one process trains on in one epoch: each clip loaded (or read from the clip cache), augmented
with draws seeded by (seed, epoch, clip), its transcript turned into labels, the batch padded as the official
collate does; then grouped into optimiser steps for gradient accumulation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .augment import NoiseBank, train_audio, train_video
from .data import BadExample, Example, load_example

if TYPE_CHECKING:
    from .trainer import TrainOptions


class EpochBatches(torch.utils.data.Dataset):
    """The batches one process trains on in one epoch, each loaded, augmented and padded on demand."""

    def __init__(self, examples: list[Example], batches: list[list[int]], epoch: int, options: TrainOptions, tokenizer, tokens):
        self.examples, self.batches, self.epoch, self.options = examples, batches, epoch, options
        self.tokenizer, self.tokens = tokenizer, tokens
        self.noise: NoiseBank | None = None

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, position: int) -> dict:
        if self.noise is None:  # decoded in the worker that needs it, once
            self.noise = NoiseBank(self.options.augmentation.noise_files)
        audios, videos, texts, skipped = [], [], [], []
        for index in self.batches[position]:
            example = self.examples[index]
            try:
                audio, crops = load_example(example, self.options.cache)
            except BadExample as error:
                skipped.append((example.id, str(error)))
                continue
            rng = np.random.default_rng([self.options.seed, self.epoch, index])
            videos.append(train_video(crops, self.options.augmentation, rng))
            audios.append(train_audio(audio, len(crops), self.options.augmentation, self.noise, rng))
            ids = self.tokenizer(example.text, add_special_tokens=False).input_ids
            texts.append([self.tokens.bos, *ids, self.tokens.eos])
        return {"position": position, "skipped": skipped, **(pad_batch(audios, videos, texts, self.tokens.pad) if texts else {})}


def pad_batch(audios: list[torch.Tensor], videos: list[torch.Tensor], texts: list[list[int]], pad_id: int) -> dict:
    """The official collate: zeros after shorter waveforms and clips, the pad id after shorter transcripts."""
    audio = torch.nn.utils.rnn.pad_sequence(audios, batch_first=True)
    video = torch.nn.utils.rnn.pad_sequence(videos, batch_first=True)
    text = torch.nn.utils.rnn.pad_sequence([torch.tensor(t) for t in texts], batch_first=True, padding_value=pad_id)
    return {"audio": audio, "video": video, "text": text}


def accumulation_groups(batches, size: int, count: int):
    """Consecutive groups of ``size`` batches (the last group of an epoch may be smaller)."""
    group = []
    for _ in range(count):
        group.append(next(batches))
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group
