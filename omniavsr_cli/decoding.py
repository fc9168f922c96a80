"""Running chunks through the model in batches: packing, out-of-memory backoff, hallucination guards, and
the attention pass word timings are found from (alignment.py), on the prefixes decoding already computed.

An LLM decoder fails on speech the way whisper does: it loops ("the the the ...") or runs on past the end
of what was said. Each transcript is checked for a repeated n-gram and for more tokens per second than
speech has; a flagged chunk is decoded once more with repeated 3-grams forbidden, and whatever remains is
flagged in the JSON output rather than dropped.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .errors import OutOfMemory, UsageError, finite_number, parameter, whole_number
from .timebase import FPS
from .timing import StageTimer

if TYPE_CHECKING:  # the model and the alignment pass are imported where they run: a worker preparing inputs needs neither
    from . import alignment
    from .model.omni import Clip

log = logging.getLogger("omniavsr")

# LRS3 averages about 4 Llama tokens per second of speech; fast speech stays under 8. Above this, the
# transcript holds words nobody said.
MAX_TOKENS_PER_SECOND = 12.0
RETRY_NO_REPEAT_NGRAM = 3


def _frames(seconds: float) -> int:
    """A clip's length in 25 fps video frames, the unit of the batch limits."""
    return max(1, round(seconds * FPS))


def repeated_ngram(ids: Sequence[int], longest: int = 8) -> bool:
    """True when some n-gram (n <= ``longest``) repeats back to back: 4 times for single tokens, 3 for longer."""
    for n in range(1, longest + 1):
        needed = 4 if n == 1 else 3
        for start in range(len(ids) - n * needed + 1):
            gram = ids[start : start + n]
            if all(ids[start + k * n : start + (k + 1) * n] == gram for k in range(1, needed)):
                return True
    return False


def hallucination_flags(ids: list[int], seconds: float, budget: int) -> list[str]:
    flags = []
    if repeated_ngram(ids):
        flags.append("repetition")
    if len(ids) >= budget:
        flags.append("token_limit")  # it never said it was done
    if len(ids) / max(seconds, 1.0) > MAX_TOKENS_PER_SECOND:
        flags.append("too_many_tokens")
    return flags


@dataclass
class Decoded:
    ids: list[int]
    flags: list[str] = field(default_factory=list)
    retried: bool = False
    attention: alignment.TokenAttention | None = None  # with word_heads: the pass word timings come from


@dataclass(frozen=True)
class DecodingOptions:
    """Deterministic beam search by default (the official runs sampled within the beams, unseeded: §6.1)."""

    num_beams: int = 15
    sample: bool = False  # the official beam sampling: temperature 0.6, top-p 0.9 (Llama-3.2-1B's generation config)
    temperature: float = 0.6
    top_p: float = 0.9
    seed: int | None = None
    max_new_tokens: int | None = None  # None: grows with the clip (official: always 32, which cuts long clips)
    tokens_per_second: float = 8.0  # LRS3 speech is about 3 words, 4 tokens per second: twice that is ample
    no_repeat_ngram_size: int = 0  # the retry of a repeating transcript forbids repeated 3-grams

    def __post_init__(self) -> None:
        # Checked here, not deep in transformers' generate after the media work is done.
        wholes = {"num_beams": 1, "no_repeat_ngram_size": 0} | ({"max_new_tokens": 1} if self.max_new_tokens is not None else {})
        for name, least in wholes.items():
            if not whole_number(getattr(self, name), least):
                raise UsageError(f"{parameter(name)} {getattr(self, name)!r}: give a whole number, at least {least}")
        for name in ("temperature", "tokens_per_second"):
            if not (finite_number(getattr(self, name)) and getattr(self, name) > 0):
                raise UsageError(f"{parameter(name)} {getattr(self, name)!r}: give a finite number above 0")
        if not (finite_number(self.top_p) and 0 < self.top_p <= 1):
            raise UsageError(f"{parameter('top_p')} {self.top_p!r}: give a probability above 0 and at most 1")
        if self.seed is not None and not (whole_number(self.seed, 0) and self.seed < 2**63):
            raise UsageError(f"{parameter('seed')} {self.seed!r}: give a whole number from 0 to 2**63 - 1")

    def max_new_tokens_for(self, seconds: float) -> int:
        """The official 32 for clips up to 4 s, then 8 per second, rounded up to a multiple of 16.

        The rounding lets clips of similar length share a budget and so a batch: a batch must give every
        clip the budget it would get alone, or beam search could end differently.
        """
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        return max(32, 16 * math.ceil(seconds * self.tokens_per_second / 16))


@dataclass
class BatchLimits:
    """How much goes into one model call: at most ``size`` clips and ``frames`` video frames (25 per second,
    padding included). ``adaptive`` halves them on an out-of-memory error and retries."""

    size: int = 32
    frames: int = 12_000
    adaptive: bool = True

    def pack(self, lengths: list[int]) -> list[list[int]]:
        """Indices of lengths sorted longest first, cut into batches within the limits."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches: list[list[int]] = []
        for index in order:
            current = batches[-1] if batches else None
            # Sorted longest first, the batch's first clip sets its padded length.
            if current and len(current) < self.size and (len(current) + 1) * lengths[current[0]] <= self.frames:
                current.append(index)
            else:
                batches.append([index])
        return batches


class BatchDecoder:
    """Decode lists of same-task clips in batches, backing off on out-of-memory, with the guards above."""

    def __init__(
        self,
        model,
        rates: tuple[int, int],
        options: DecodingOptions,
        limits: BatchLimits,
        guards: bool = True,
        timer: StageTimer | None = None,
        word_heads: list[tuple[int, int]] | None = None,
    ):
        self.model, self.rates, self.options, self.limits, self.guards = model, rates, options, limits, guards
        self.word_heads = word_heads  # the (layer, head) pairs of the attention pass; None: no word timings
        self.timer = timer or StageTimer()  # the model's "encoders" and "llm" seconds
        self.settled_size: int | None = None  # the batch size an out-of-memory backoff settled on

    def batches(self, seconds: list[float]) -> list[tuple[list[int], bool]]:
        """How clips of these lengths are decoded: (indices, whether the batch is full) for each model call.

        Clips are grouped by token budget first: a batch must give every clip the budget it would get alone, or
        beam search could end differently, so batched decoding equals one clip at a time. Each group is packed
        longest first within the limits; a batch is full when one more clip of its length would not fit.
        """
        budget = self.options.max_new_tokens_for
        groups: dict[int, list[int]] = {}
        for index in sorted(range(len(seconds)), key=lambda i: -seconds[i]):
            groups.setdefault(budget(seconds[index]), []).append(index)
        planned = []
        for members in groups.values():
            frames = [_frames(seconds[i]) for i in members]
            for batch in self.limits.pack(frames):
                full = len(batch) >= self.limits.size or (len(batch) + 1) * frames[batch[0]] > self.limits.frames
                planned.append(([members[i] for i in batch], full))
        return planned

    def decode(self, clips: list[Clip], task: str) -> list[Decoded]:
        """Each clip's tokens and flags (same-task clips of any lengths: they are batched as :meth:`batches` plans)."""
        results: list[Decoded] = [None] * len(clips)  # type: ignore[list-item]
        for batch, _ in self.batches([clip.seconds for clip in clips]):
            for index, result in zip(batch, self._decode_group([clips[i] for i in batch], task)):
                results[index] = result
        return results

    def _decode_group(self, clips: list[Clip], task: str) -> list[Decoded]:
        """Clips that share a token budget."""
        prefixes: dict[int, object] = {}  # each clip's prefix embeddings: a retry and the word pass reuse them
        results = [Decoded(ids) for ids in self._generate(clips, task, self.options, prefixes)]
        if self.guards:
            self._retry_suspicious(clips, task, results, prefixes)
        if self.word_heads is not None:
            self._attend(clips, task, results, prefixes)
        return results

    def _retry_suspicious(self, clips: list[Clip], task: str, results: list[Decoded], prefixes: dict) -> None:
        budget = self.options.max_new_tokens_for(max(clip.seconds for clip in clips))
        for result, clip in zip(results, clips):
            result.flags = hallucination_flags(result.ids, clip.seconds, budget)
        suspicious = [i for i, result in enumerate(results) if result.flags]
        if suspicious:
            retry = replace(self.options, no_repeat_ngram_size=RETRY_NO_REPEAT_NGRAM)
            with warnings.catch_warnings():  # "applies to new tokens only": what we want, the prefix is not text
                warnings.filterwarnings("ignore", message=".*no_repeat_ngram_size.*")
                kept = {k: prefixes[i] for k, i in enumerate(suspicious)}
                retried = self._generate([clips[i] for i in suspicious], task, retry, kept)
            for index, ids in zip(suspicious, retried):
                flags = hallucination_flags(ids, clips[index].seconds, budget)
                if len(flags) <= len(results[index].flags):
                    results[index] = Decoded(ids, flags)
                results[index].retried = True

    def _attend(self, clips: list[Clip], task: str, results: list[Decoded], prefixes: dict) -> None:
        """The teacher-forced pass over each clip's final tokens and EOS (alignment.attention_to_prefix)."""
        import torch

        from . import alignment

        eos = self.model.config.tokens.eos
        for batch in self.limits.pack([_frames(clip.seconds) for clip in clips]):
            layouts = [alignment.prefix_layout(self.model, clips[i], task, self.rates) for i in batch]
            try:
                with self.timer.timed("words"), torch.inference_mode():
                    passes = alignment.attention_to_prefix(
                        self.model, [prefixes[i] for i in batch], layouts, [results[i].ids + [eos] for i in batch], task, self.word_heads
                    )
            except torch.OutOfMemoryError:  # one sequence a clip, where decoding that just fitted had num_beams
                raise OutOfMemory(
                    f"out of memory timing the words of {len(batch)} clip(s); use a smaller {parameter('batch_size')} "
                    f"or turn off {parameter('word_timestamps')}"
                ) from None
            for index, attention in zip(batch, passes):
                results[index].attention = attention

    def _generate(self, clips: list[Clip], task: str, options: DecodingOptions, prefixes: dict) -> list[list[int]]:
        """Each clip's tokens; ``prefixes`` (by clip index) supplies the prefix embeddings it has and keeps
        those it computes."""
        import torch

        lengths = [_frames(clip.seconds) for clip in clips]
        ids: list[list[int] | None] = [None] * len(clips)
        pending = self.limits.pack(lengths)
        wait = torch.cuda.synchronize if next(self.model.parameters()).is_cuda else None
        while pending:
            batch = pending.pop(0)
            try:
                with torch.inference_mode():
                    missing = [i for i in batch if i not in prefixes]
                    if missing:
                        with self.timer.timed("encoders", wait):
                            made = self.model.prefix_embeddings([clips[i] for i in missing], task, self.rates)
                        prefixes.update(zip(missing, made))
                    decoded = self.model.generate(
                        [clips[i] for i in batch], task, self.rates, options, self.timer, [prefixes[i] for i in batch]
                    )
                    for index, result in zip(batch, decoded):
                        ids[index] = result
            except torch.OutOfMemoryError:
                if not self.limits.adaptive or len(batch) == 1:
                    raise OutOfMemory(
                        f"out of memory decoding {len(batch)} clip(s) of up to {max(lengths[i] for i in batch) / FPS:.0f} s; use a smaller "
                        f"{parameter('batch_size')}, {parameter('max_chunk_s')} or fewer {parameter('num_beams')}, or a larger device"
                    ) from None
                torch.cuda.empty_cache()
                self.limits.size = max(1, len(batch) // 2)
                self.limits.frames = max(max(lengths), math.ceil(self.limits.frames / 2))
                self.settled_size = self.limits.size
                log.warning("out of memory with a batch of %d: retrying with at most %d", len(batch), self.limits.size)
                repacked = self.limits.pack([lengths[i] for i in batch])
                pending = [[batch[j] for j in part] for part in repacked] + pending
        return ids  # type: ignore[return-value]
