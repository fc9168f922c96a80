"""Word timings from the model itself: the LLM's attention from each transcript token to its audio and video tokens.

Omni-AVSR has no cross-attention and no CTC head, but its decoder reads the audio and video tokens through
self-attention, and some heads look at the stretch of speech the next token comes from. Whisper's recipe,
adapted where measurement said so (docs/word-timings.md): one teacher-forced pass over the prefix and the
decoded tokens keeps the weights of the chosen (layer, head) pairs from each token to the modality positions;
each head is z-scored over the tokens, median-filtered over time (at most 140 ms) and averaged; the matrix goes
onto a 20 ms grid (AVSR adds audio and video there); dynamic time warping finds the monotonic path through the
negated matrix, and each token's span is the path's columns where its evidence is strong. Words are runs of
tokens, a new one at each token that starts with a space.

Which heads align is a property of the weights: calibrate_heads finds them on clips with known word times (one
all-heads pass per clip and cell, each head scored alone, then greedy forward selection) and store_heads keeps
them in the model's config.json (``alignment_heads``), where heads_for reads them (docs/align-heads.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .atomic import atomic_path, write_text_atomic
from .errors import InputError, ModelUnavailable, OutputError, UsageError, parameter
from .model.config import TASK_ADAPTER, TASKS, OmniAVSRConfig
from .model.llm import activate
from .model.loading import LoadedModel
from .model.omni import TASK_MODALITIES, Clip, OmniAVSR, left_pad
from .scoring.word_times import WordTime, summarise, timing_errors
from .timebase import MS_PER_FRAME
from .weights import CHECKSUMS, sha256_of, verify
from .writers import Word

AUDIO_FRAME_MS = 20  # one Whisper encoder frame
MEDIAN_SPAN_S = 0.14  # whisper's median filter: 7 positions of 20 ms
GRID_S = 0.02  # the grid word times are found on, whatever the token period
KEEP = 0.5  # a token's columns at its edges with less than this share of its peak evidence are pause, not speech
MAX_MEDIAN_WORD_S = 0.7  # whisper's post-rules: the typical word is at most this long, a word at most twice typical
DECIMALS = 3
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class PrefixLayout:
    """Where a clip's audio and video tokens sit in its LLM prefix (prefix_embeddings' order)."""

    audio: range | None
    video: range | None
    length: int


def prefix_layout(module: OmniAVSR, clip: Clip, task: str, rates: tuple[int, int]) -> PrefixLayout:
    """The positions prefix_embeddings gives a clip: BOS, [<audio> A </audio>], [<video> V </video>], prompt.

    Block lengths are the encoders' token counts: kept Whisper frames // audio rate, video frames // video rate
    (both poolings drop a window they cannot fill)."""
    position, audio, video = 1, None, None
    if task in ("asr", "avsr"):
        count = module.kept_audio_frames(len(clip.audio_for(task))) // rates[0]
        audio, position = range(position + 1, position + 1 + count), position + count + 2
    if task in ("vsr", "avsr"):
        count = len(clip.video) // rates[1]
        video, position = range(position + 1, position + 1 + count), position + count + 2
    prompt = getattr(module, f"prompt_{TASK_ADAPTER[task]}").shape[1]
    return PrefixLayout(audio, video, position + prompt)


def seconds_per_position(rates: tuple[int, int]) -> dict[str, float]:
    """Seconds one token covers: audio rate r pools r Whisper frames of 20 ms, video rate r pools r frames of 40 ms."""
    return {"audio": rates[0] * AUDIO_FRAME_MS / 1000, "video": rates[1] * MS_PER_FRAME / 1000}


# ---------------------------------------------------------------------------------------------- heads


def default_heads(config) -> list[tuple[int, int]]:
    """Whisper's default when a model has no calibrated heads: every head of the upper half of the layers."""
    layers, heads = config.llm.num_hidden_layers, config.llm.num_attention_heads
    return [(layer, head) for layer in range(layers // 2, layers) for head in range(heads)]


def heads_for(config) -> tuple[list[tuple[int, int]], bool]:
    """The heads to align with and whether they were calibrated: the model's stored ``alignment_heads``
    (``omniavsr align-heads``) and True, or default_heads and False."""
    if config.alignment_heads is not None:
        return [tuple(pair) for pair in config.alignment_heads], True
    return default_heads(config), False


def check_heads(config, heads: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``heads`` as sorted (layer, head) pairs, each inside the model."""
    layers, count = config.llm.num_hidden_layers, config.llm.num_attention_heads
    pairs = sorted({(int(layer), int(head)) for layer, head in heads})
    if not pairs:
        raise ValueError("no alignment heads given")
    for layer, head in pairs:
        if not (0 <= layer < layers and 0 <= head < count):
            raise ValueError(f"alignment head ({layer}, {head}) is not in a model of {layers} layers x {count} heads")
    return pairs


# ------------------------------------------------------------------------------------------ attention


@dataclass
class TokenAttention:
    """One clip's teacher-forced pass: for each target token (transcript + EOS), the attention of the position
    that predicts it to the audio and video tokens, per chosen head, and the token's log-probability."""

    audio: np.ndarray | None  # (heads, tokens, audio positions)
    video: np.ndarray | None  # (heads, tokens, video positions)
    logprobs: np.ndarray  # (tokens,)


def _columns(weights: torch.Tensor, start: int, span: range | None) -> np.ndarray | None:
    """The weights (heads, tokens, L) to one modality's positions, its prefix beginning at ``start``."""
    return None if span is None else weights[:, :, start + span.start : start + span.stop].cpu().numpy()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE as Llama applies it (rotate_half convention), cos/sin (B, L, D) broadcast over the heads."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[:, None] + rotated * sin[:, None]


def attention_to_prefix(
    module: OmniAVSR,
    prefixes: list[torch.Tensor],
    layouts: list[PrefixLayout],
    targets: list[list[int]],
    task: str,
    heads: list[tuple[int, int]],
) -> list[TokenAttention]:
    """ONE teacher-forced pass of the LLM over each prefix + its target ids (left-padded, as token_logprobs).

    The model keeps its own attention kernel (sdpa): a hook on each chosen layer's self-attention recomputes
    softmax(QK^T / sqrt(d) + causal and padding mask) for the chosen heads and only for the rows that predict a
    target token, from the same q/k projections (LoRA included) and rotary embeddings the layer uses.
    """
    llm = module.llm
    activate(llm, module.config.variant, task)
    heads = check_heads(module.config, heads)
    embed = llm.get_input_embeddings()
    sequences = [torch.cat([prefix, embed(torch.tensor(ids, device=prefix.device))]) for prefix, ids in zip(prefixes, targets)]
    embeds, mask = left_pad(sequences)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    length, rows = embeds.shape[1], max(len(ids) for ids in targets)
    window = slice(length - rows - 1, length - 1)  # the positions that predict the longest target's tokens
    allowed = mask.bool()[:, None, :] & (
        torch.arange(length, device=mask.device)[None, :] <= torch.arange(length, device=mask.device)[window, None]
    )
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)
    weights: dict[int, torch.Tensor] = {}

    def capture(layer: int):
        def hook(attention, args, kwargs):
            hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
            cos, sin = kwargs["position_embeddings"]
            dim, chosen = attention.head_dim, by_layer[layer]
            query = attention.q_proj(hidden[:, window]).view(len(hidden), rows, -1, dim).transpose(1, 2)[:, chosen]
            key = attention.k_proj(hidden).view(len(hidden), length, -1, dim).transpose(1, 2)
            key = key[:, [h // attention.num_key_value_groups for h in chosen]]
            query, key = _rotate(query, cos[:, window], sin[:, window]), _rotate(key, cos, sin)
            scores = (query.float() @ key.float().transpose(-1, -2)) * attention.scaling
            weights[layer] = scores.masked_fill(~allowed[:, None], float("-inf")).softmax(-1)

        return hook

    hooks = [llm.model.layers[layer].self_attn.register_forward_pre_hook(capture(layer), with_kwargs=True) for layer in by_layer]
    try:
        with torch.no_grad():
            logits = llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).logits.float()
    finally:
        for handle in hooks:
            handle.remove()
    stacked = torch.cat([weights[layer] for layer in by_layer], dim=1)  # (B, heads in (layer, head) order, rows, L)
    results = []
    for row, (ids, layout) in enumerate(zip(targets, layouts)):
        start = length - len(sequences[row])  # where the clip's prefix begins after the left padding
        own = stacked[row, :, rows - len(ids) :]
        predicting = logits[row, length - len(ids) - 1 : length - 1]
        logprobs = predicting.log_softmax(-1).gather(-1, torch.tensor(ids, device=predicting.device)[:, None])[:, 0]

        results.append(TokenAttention(_columns(own, start, layout.audio), _columns(own, start, layout.video), logprobs.cpu().numpy()))
    return results


# ------------------------------------------------------------------------------------------ filtering


def median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """Median of each window of ``width`` (odd) along the last axis, the edges reflected (as whisper pads)."""
    if width % 2 != 1 or width < 1:
        raise ValueError(f"the median filter's width must be odd, not {width}")
    half = width // 2
    if half == 0 or x.shape[-1] <= half:  # nothing to smooth, or too short to reflect
        return x.copy()
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(half, half)], mode="reflect")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1), axis=-1)


def median_width_for(step: float) -> int:
    """The widest odd filter spanning at most whisper's 7 x 20 ms: 1 (none) at a token period of 80 ms or more."""
    width = max(1, int(MEDIAN_SPAN_S / step + 1e-9))
    return width if width % 2 else width - 1


def token_time_matrix(weights: np.ndarray, step: float, median_width: int | None = None) -> np.ndarray:
    """(heads, tokens, positions) attention -> (tokens, GRID_S columns) evidence of where each token is said.

    Whisper's chain: each row renormalised over the modality's positions, z-scored per head over the tokens,
    median-filtered over time (``median_width`` positions; default median_width_for the period), averaged over
    the heads. Then onto the 20 ms grid, linear between token centres, so that a word boundary can fall inside
    a token (measured: docs/word-timings.md)."""
    return onto_grid(head_evidence(weights, step, median_width).mean(axis=0), step)


def head_evidence(weights: np.ndarray, step: float, median_width: int | None = None) -> np.ndarray:
    """token_time_matrix's per-head part, (heads, tokens, positions): renormalised, z-scored, median-filtered.
    A head set's evidence is the mean of its heads' (what calibration exploits: one pass, any set)."""
    weights = weights / np.maximum(weights.sum(-1, keepdims=True), 1e-12)
    mean, std = weights.mean(axis=-2, keepdims=True), weights.std(axis=-2, keepdims=True)
    scored = (weights - mean) / np.maximum(std, 1e-8)
    return median_filter(scored, median_width or median_width_for(step))


def onto_grid(evidence: np.ndarray, step: float) -> np.ndarray:
    """(tokens, positions of ``step`` seconds) -> (tokens, GRID_S columns), linear between token centres."""
    positions = evidence.shape[-1]
    columns = max(1, round(positions * step / GRID_S))
    centres, grid = (np.arange(positions) + 0.5) * step, (np.arange(columns) + 0.5) * GRID_S
    return np.stack([np.interp(grid, centres, row) for row in evidence])


def combined(matrices: list[np.ndarray]) -> np.ndarray:
    """The sum of the modalities' grid matrices, as long as the shortest (AVSR audio is cut to the video's length)."""
    columns = min(m.shape[-1] for m in matrices)
    return sum(m[:, :columns] for m in matrices)


# ------------------------------------------------------------------------------------------------ DTW


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cheapest monotonic path through ``cost`` (tokens x positions) from (0, 0) to the last corner, with
    steps right (same token, next position), down (next token, same position) and diagonal.

    Returns the path's (token index, position index) arrays. Each row is one vectorised scan: with a[j] the
    best arrival from the row above, total[j] = min over k <= j of a[k] + cost[i, k+1..j], a running minimum
    of a - cumsum(cost) shifted back by the cumsum.
    """
    rows, cols = cost.shape
    total = np.full((rows + 1, cols + 1), np.inf)
    total[0, 0] = 0.0
    for i in range(1, rows + 1):
        row = cost[i - 1].astype(np.float64)
        arrive = row + np.minimum(total[i - 1, :-1], total[i - 1, 1:])  # diagonal or down into column j (1-based j+1)
        running = np.concatenate([[0.0], np.cumsum(row)])
        best = np.minimum.accumulate(np.concatenate([[total[i, 0]], arrive]) - running)
        total[i, 1:] = (best + running)[1:]
    path_rows, path_cols = [], []
    i, j = rows, cols
    while i > 0 and j > 0:
        path_rows.append(i - 1)
        path_cols.append(j - 1)
        diagonal, down, right = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
        if diagonal <= down and diagonal <= right:
            i, j = i - 1, j - 1
        elif down <= right:
            i -= 1
        else:
            j -= 1
    return np.array(path_rows[::-1], dtype=int), np.array(path_cols[::-1], dtype=int)


def token_spans(matrix: np.ndarray, keep: float = KEEP) -> tuple[np.ndarray, np.ndarray]:
    """Each token's first and last-plus-one column: those the DTW path through -matrix gives it, less the ones
    at its edges where its evidence is under ``keep`` x its peak there (the pause around a word, not speech).

    A free row before the first token lets the path skip the silence a chunk begins with (the padding the VAD
    leaves around speech) instead of giving it to the first word."""
    rows, columns = dtw(-np.vstack([np.zeros((1, matrix.shape[1])), matrix]))
    starts, ends = np.empty(len(matrix), dtype=int), np.empty(len(matrix), dtype=int)
    for token in range(len(matrix)):
        own = columns[rows == token + 1]  # never empty: the path visits every row
        evidence = matrix[token, own]
        strong = own[evidence >= keep * evidence.max()] if evidence.max() > 0 else own
        starts[token], ends[token] = strong.min(), strong.max() + 1
    return starts, ends


# ---------------------------------------------------------------------------------------------- words


def split_words(ids: list[int], tokenizer) -> list[tuple[str, list[int]]]:
    """Words as (text, token indices): a token whose text begins with a space starts a word (BPE's ``Ġ``); a
    word-level tokenizer's decode puts a space before each word, so every token is one. A piece that decodes
    to part of a character (bytes of a multi-byte one) stays with the token that completes it, and a word of
    punctuation alone joins the word before it (or after it, at the start)."""
    words: list[tuple[str, list[int]]] = []
    decoded, pending = "", []
    for index in range(len(ids)):
        pending.append(index)
        text = tokenizer.decode(ids[: index + 1], skip_special_tokens=True, clean_up_tokenization_spaces=False)
        if text.endswith("\ufffd"):
            continue
        piece, decoded = text[len(decoded) :], text
        if not piece:
            if words:
                words[-1][1].extend(pending)
            pending = []
            continue
        if words and not piece[0].isspace():
            words[-1] = (words[-1][0] + piece, words[-1][1] + pending)
        else:
            words.append((piece, pending))
        pending = []
    merged: list[tuple[str, list[int]]] = []
    for text, indices in words:
        if merged and not any(c.isalnum() for c in text):
            merged[-1] = (merged[-1][0] + text, merged[-1][1] + indices)
        elif merged and not any(c.isalnum() for c in merged[-1][0]):
            merged[-1] = (merged[-1][0] + text, merged[-1][1] + indices)
        else:
            merged.append((text, indices))
    return merged


def align_words(
    attention: TokenAttention,
    ids: list[int],
    tokenizer,
    steps: dict[str, float],
    start: float,
    end: float,
    *,
    modalities: tuple[str, ...] = ("audio", "video"),
    median_width: int | None = None,
) -> list[Word]:
    """Timed words of one segment from its pass (``ids``: the transcript tokens; the pass's targets were these
    and EOS, whose row takes the silence after the speech).

    ``steps``: seconds per position of each modality (seconds_per_position); ``start``/``end``: the segment,
    where position 0 begins and no word may leave; ``modalities``: the streams to align on (those the pass
    lacks are skipped), summed on the 20 ms grid. A word spans its first token's start to its last token's end;
    its probability is the mean of its tokens' probabilities (whisper's choice)."""
    if not ids:
        return []
    matrices = [
        token_time_matrix(getattr(attention, name), steps[name], median_width)
        for name in modalities
        if getattr(attention, name) is not None and getattr(attention, name).shape[-1]
    ]
    if not matrices:
        raise ValueError("the pass has none of the modalities asked for")
    return timed_words(combined(matrices), split_words(ids, tokenizer), np.exp(attention.logprobs[: len(ids)]), start, end)


def timed_words(matrix: np.ndarray, words: list[tuple[str, list[int]]], probabilities: np.ndarray, start: float, end: float) -> list[Word]:
    """align_words' last steps: the token spans of a grid ``matrix``, grouped into ``words`` (split_words),
    each word's probability the mean of its tokens', inside [start, end] (tidy), rounded to the millisecond."""
    starts, ends = token_spans(matrix)
    timed = [
        (text, start + starts[indices[0]] * GRID_S, start + ends[indices[-1]] * GRID_S, float(probabilities[indices].mean()))
        for text, indices in words
    ]
    return [Word(text, round(s, DECIMALS), round(e, DECIMALS), round(p, DECIMALS)) for text, s, e, p in tidy(timed, start, end)]


def tidy(words: list[tuple[str, float, float, float]], start: float, end: float) -> list[tuple[str, float, float, float]]:
    """The guarantees and whisper's post-rules: inside [start, end], in order, never overlapping; a word longer
    than twice the typical word (the median, at most 0.7 s) is cut, at its end (the pause before the next word
    is not speech) or, for the segment's first word, at its start (the silence before the first word)."""
    clamped, previous = [], start
    for text, s, e, p in words:
        s = min(max(s, previous, start), end)
        e = min(max(e, s), end)
        clamped.append([text, s, e, p])
        previous = e
    durations = [e - s for _, s, e, _ in clamped if e > s]
    if durations:
        longest = 2 * min(float(np.median(durations)), MAX_MEDIAN_WORD_S)
        for k, word in enumerate(clamped):
            if word[2] - word[1] > longest:
                if k == 0:
                    word[1] = word[2] - longest
                else:
                    word[2] = word[1] + longest
    return [tuple(word) for word in clamped]


# ---------------------------------------------------------------------------------------- calibration

TASK_LABELS = {"asr": "ASR", "vsr": "VSR", "avsr": "AV"}  # as `omniavsr eval` labels its cells
MAX_HEADS = 16
CANDIDATES = 32  # greedy selection tries only this many of the best single heads: 512 heads x every step is hours of DTW


class CalibrationCell(NamedTuple):
    """A task at one (audio, video) rate pair; the rate of a stream the task does not read is ignored."""

    task: str
    rates: tuple[int, int]

    @property
    def label(self) -> str:
        rates = {"asr": self.rates[:1], "vsr": self.rates[1:], "avsr": self.rates}[self.task]
        return f"{TASK_LABELS[self.task]} {','.join(map(str, rates))}"


def default_cells(config) -> list[CalibrationCell]:
    """Every task at the model's finest rates and at its coarsest (where the heads that align differ most)."""
    finest, coarsest = (config.audio_rates[0], config.video_rates[0]), (config.audio_rates[-1], config.video_rates[-1])
    cells = [CalibrationCell(task, rates) for task in TASKS for rates in (finest, coarsest)]
    return list(dict.fromkeys(CalibrationCell(task, _used_rates(task, rates, config)) for task, rates in cells))


def _used_rates(task: str, rates: tuple[int, int], config) -> tuple[int, int]:
    """``rates`` with the rate of the stream ``task`` does not read set to the finest (so equal cells compare equal)."""
    return (rates[0] if task != "vsr" else config.audio_rates[0], rates[1] if task != "asr" else config.video_rates[0])


def check_cells(config, cells) -> list[CalibrationCell]:
    """``cells`` as CalibrationCells, each a task and rates the model was trained with, each once."""
    checked = []
    for task, rates in cells:
        rates = tuple(rates)
        if task not in TASKS:
            raise UsageError(f"{parameter('cells')}: unknown task {task!r}; choose from {', '.join(TASKS)}")
        wrong = [
            f"{stream} rate {rate} (trained: {', '.join(map(str, allowed))})"
            for stream, rate, allowed, used in (
                ("audio", rates[0], config.audio_rates, task != "vsr"),
                ("video", rates[1], config.video_rates, task != "asr"),
            )
            if used and rate not in allowed
        ]
        if wrong:
            raise UsageError(f"{parameter('cells')}: {task} at {' and '.join(wrong)} is not a rate this model was trained with")
        checked.append(CalibrationCell(task, _used_rates(task, rates, config)))
    if not checked:
        raise UsageError(f"{parameter('cells')}: give at least one task and rate")
    return list(dict.fromkeys(checked))


@dataclass(frozen=True)
class LabelledClip:
    """A clip with known word times: ``id`` keys its reference words, ``text`` is the transcript the pass is
    forced through, ``clip`` its audio and video, or a function that loads them (so a long list holds one clip
    at a time; an InputError it raises skips the clip)."""

    id: str
    text: str
    clip: Clip | Callable[[], Clip]


@dataclass(frozen=True)
class Figures:
    """How near one head set's word times are to the reference in one cell, starts and ends pooled (seconds, fractions)."""

    words: int
    median: float
    within_80ms: float
    within_200ms: float


@dataclass(frozen=True)
class HeadSet:
    heads: tuple[tuple[int, int], ...]
    figures: tuple[Figures, ...]  # one per cell, in HeadReport.cells' order

    @property
    def error(self) -> float:
        """What calibration minimises: the mean over the cells of the median absolute error of starts and ends."""
        return float(np.mean([figures.median for figures in self.figures]))


@dataclass
class HeadReport:
    """calibrate_heads' result: every head alone, whisper's default set, all heads, and the greedy selection's
    set after each step (the last is the choice)."""

    cells: list[CalibrationCell]
    singles: list[HeadSet]  # (layer, head) order
    default: HeadSet
    everything: HeadSet
    steps: list[HeadSet]
    clips: int  # clips aligned in at least one cell
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (clip id, why): no word times, too long, too short for a cell
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (clip id, why): the clip could not be loaded

    @property
    def chosen(self) -> tuple[tuple[int, int], ...]:
        return self.steps[-1].heads


@dataclass
class _Case:
    """One clip in one cell: every head's evidence per modality (head_evidence, float16 to halve the memory)
    and what its words are measured against."""

    cell: int
    words: list[tuple[str, list[int]]]
    evidence: dict[str, np.ndarray]
    steps: dict[str, float]
    seconds: float
    reference: Sequence[WordTime]


def calibrate_heads(
    model: LoadedModel,
    examples: Sequence[LabelledClip],
    word_times: Mapping[str, Sequence[WordTime]],
    cells: Sequence[tuple[str, tuple[int, int]]],
    max_heads: int = MAX_HEADS,
    *,
    candidates: int = CANDIDATES,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> HeadReport:
    """The LLM heads whose attention best times the words of ``examples`` against ``word_times`` (by clip id).

    Each clip in each cell gets ONE teacher-forced pass with every head on its reference transcript (the
    model's tokens, then EOS), aligned as align_words does over the whole clip, [0, its length]. Each head
    alone is then scored, and a set grown by greedy forward selection: add the head (of the ``candidates``
    best alone) that most lowers the error, the mean over the cells of the median absolute start and end
    error, until none does or the set has ``max_heads``. ``on_progress(stage, done, total)``: stage "passes"
    (clips x cells), then "sets" (head sets scored; at most ``total``). Clips without word times, longer
    than the audio encoder's window or too short for a cell's rate are skipped; each cell needs one clip."""
    for name, value in (("max_heads", max_heads), ("candidates", candidates)):
        if value < 1:
            raise UsageError(f"{parameter(name)} {value}: must be at least 1")
    config = model.config
    cells = check_cells(config, cells)
    progress = on_progress or (lambda stage, done, total: None)
    every = [(layer, head) for layer in range(config.llm.num_hidden_layers) for head in range(config.llm.num_attention_heads)]
    report = HeadReport(cells, [], HeadSet((), ()), HeadSet((), ()), [], 0)
    cases = _passes(model, examples, word_times, cells, every, report, progress)
    empty = [cell.label for index, cell in enumerate(cells) if not any(case.cell == index for case in cases)]
    if empty:
        reasons = report.unreadable + report.skipped
        example = f"; e.g. {reasons[0][0]}: {reasons[0][1]}" if reasons else ""
        raise InputError(f"no clip could be aligned in {', '.join(empty)}{example}", code="E_NO_CLIPS")

    scored: dict[tuple[int, ...], HeadSet] = {}
    shortlist = min(candidates, len(every))
    total = len(every) + 2 + sum(max(shortlist - size, 0) for size in range(1, max_heads))

    def score(indices) -> HeadSet:
        key = tuple(sorted(indices))
        if key not in scored:
            scored[key] = HeadSet(tuple(every[k] for k in key), _figures(cases, len(cells), list(key)))
            progress("sets", len(scored), total)
        return scored[key]

    report.singles = [score([k]) for k in range(len(every))]
    report.default = score([every.index(pair) for pair in default_heads(config)])
    report.everything = score(range(len(every)))
    pool = sorted(range(len(every)), key=lambda k: report.singles[k].error)[:shortlist]
    chosen: list[int] = []
    while len(chosen) < max_heads:
        trials = [score([*chosen, k]) for k in pool if k not in chosen]
        best = min(trials, key=lambda trial: trial.error, default=None)
        if best is None or (report.steps and best.error >= report.steps[-1].error):
            break
        chosen = [every.index(pair) for pair in best.heads]
        report.steps.append(best)
    return report


def _passes(model, examples, word_times, cells, every, report: HeadReport, progress) -> list[_Case]:
    """The teacher-forced pass of every usable clip in every cell, kept as per-head evidence."""
    module, tokenizer, config = model.module, model.require_tokenizer(), model.config
    window = config.whisper.window_seconds
    cases: list[_Case] = []
    total = len(examples) * len(cells)
    for number, example in enumerate(examples):
        progress("passes", number * len(cells), total)
        reference = word_times.get(example.id)
        ids = tokenizer(example.text, add_special_tokens=False).input_ids
        if not reference or not ids:
            report.skipped.append((example.id, "no word times" if not reference else "no transcript"))
            continue
        try:
            clip = example.clip() if callable(example.clip) else example.clip
        except InputError as error:
            report.unreadable.append((example.id, str(error).removeprefix(f"{example.id}: ")))
            continue
        if clip.seconds > window:
            report.skipped.append((example.id, f"longer ({clip.seconds:.1f} s) than the audio encoder's {window} s window"))
            continue
        words, aligned = split_words(ids, tokenizer), False
        for index, cell in enumerate(cells):
            missing = [stream for stream in TASK_MODALITIES[cell.task] if getattr(clip, stream) is None]
            if missing:
                report.skipped.append((example.id, f"no {' or '.join(missing)} for {cell.label}"))
                continue
            try:
                with torch.no_grad():
                    prefixes = module.prefix_embeddings([clip], cell.task, cell.rates)
            except InputError as error:  # too short for one token at this rate
                report.skipped.append((example.id, f"{cell.label}: {error}"))
                continue
            layout = prefix_layout(module, clip, cell.task, cell.rates)
            [attention] = attention_to_prefix(module, prefixes, [layout], [ids + [config.tokens.eos]], cell.task, every)
            steps = seconds_per_position(cell.rates)
            evidence = {
                name: head_evidence(getattr(attention, name), steps[name]).astype(np.float16)
                for name in ("audio", "video")
                if getattr(attention, name) is not None and getattr(attention, name).shape[-1]
            }
            cases.append(_Case(index, words, evidence, steps, clip.seconds, reference))
            aligned = True
        report.clips += aligned
    progress("passes", total, total)
    return cases


def _figures(cases: list[_Case], cells: int, heads: list[int]) -> tuple[Figures, ...]:
    """Each cell's figures when the ``heads`` (indices into the passes' heads) align every case."""
    errors: list[list[tuple[float, float]]] = [[] for _ in range(cells)]
    for case in cases:
        matrix = combined(
            [onto_grid(evidence[heads].astype(np.float32).mean(axis=0), case.steps[name]) for name, evidence in case.evidence.items()]
        )
        words = timed_words(matrix, case.words, np.zeros(len(matrix)), 0.0, case.seconds)
        errors[case.cell] += timing_errors([WordTime(w.word.strip(), w.start, w.end) for w in words], case.reference)
    figures = []
    for cell_errors in errors:
        pooled = summarise(cell_errors)["all"]
        if pooled["median"] is None:  # no word of the transcripts is in the word times: nothing to measure
            raise InputError(
                "the transcripts' words and the word times' words never match; check that both describe the same clips",
                code="E_ID_MISMATCH",
            )
        figures.append(Figures(len(cell_errors), pooled["median"], pooled["within_80ms"], pooled["within_200ms"]))
    return tuple(figures)


# ------------------------------------------------------------------------------ matching and storing


# How far a reference word may end past its clip's last frame: LRS3's word times and a clip's cut can differ
# by a few frames; more is another clip's times (or another time base).
WORD_TIMES_SLACK_S = 0.5


def word_times_fit(times: Sequence[WordTime], frames: int) -> bool:
    """Whether a clip of ``frames`` 25 fps frames can hold ``times`` (every word ends inside it, give or take
    :data:`WORD_TIMES_SLACK_S`); calibrating on times that belong to another clip would choose heads at random."""
    return all(word.end <= frames * MS_PER_FRAME / 1000 + WORD_TIMES_SLACK_S for word in times)


def match_word_times(clip_ids: Iterable[str], word_time_ids: Iterable[str]) -> dict[str, str]:
    """Each clip id (a manifest's ``DATASET/REL``) that has word times -> its word-times id.

    prep-lips names a clip REL, its path below the folder it was given, and its manifest prefixes the output
    folder's name; read_word_times names an LRS3 .txt by its path below the folder it was given and a
    synth-corpus clip by its id, which is REL when prep-lips read the corpus's clips/. So REL matches a
    word-times id equal to it; failing that (the two were given different folders of one tree) one that ends
    with REL, if only one does, or the longest end of REL that is a word-times id."""
    known = set(word_time_ids)
    by_ending: dict[tuple[str, ...], list[str]] = {}
    for name in known:
        parts = tuple(name.split("/"))
        for cut in range(len(parts)):
            by_ending.setdefault(parts[cut:], []).append(name)
    matches = {}
    for clip_id in clip_ids:
        rel = tuple(clip_id.split("/")[1:]) or (clip_id,)
        ending = by_ending.get(rel, [])
        if "/".join(rel) in known:
            matches[clip_id] = "/".join(rel)
        elif len(ending) == 1:
            matches[clip_id] = ending[0]
        elif not ending:
            shorter = next(("/".join(rel[cut:]) for cut in range(1, len(rel)) if "/".join(rel[cut:]) in known), None)
            if shorter is not None:
                matches[clip_id] = shorter
    return matches


def check_can_store(directory: Path) -> None:
    """Whether store_heads can write into the model ``directory``: writable, and its files as checksums.json says."""
    if not os.access(directory, os.W_OK) or any(
        (directory / name).exists() and not os.access(directory / name, os.W_OK) for name in (CONFIG_FILE, CHECKSUMS)
    ):
        raise OutputError(
            f"{directory}: the model's folder is read-only, so its config.json cannot take the heads; copy the folder somewhere "
            f"writable and pass that as {parameter('model')}, or add {parameter('dry_run')} to only print them",
            code="E_WRITE",
        )
    problems = verify(directory) if (directory / CHECKSUMS).is_file() else []
    if problems:
        raise ModelUnavailable(
            f"{problems[0]}; `omniavsr weights verify` lists what is wrong: restore the model before storing its heads", code="E_CHECKPOINT"
        )


def store_heads(directory: Path, heads: Sequence[tuple[int, int]]) -> Path:
    """Write ``heads`` into ``directory``/config.json as ``alignment_heads`` and, when the folder has a
    checksums.json, its new checksum there; both files are written whole and renamed into place. Returns
    config.json's path. Only config.json changes: its other keys keep their order and values."""
    directory = Path(directory)
    check_can_store(directory)
    config_path, sums_path = directory / CONFIG_FILE, directory / CHECKSUMS
    data = json.loads(config_path.read_text(encoding="utf-8"))
    data["alignment_heads"] = [list(pair) for pair in heads]
    OmniAVSRConfig.from_dict(data)  # the heads must fit this model's LLM (ValueError otherwise)
    sums = json.loads(sums_path.read_text(encoding="utf-8")) if sums_path.is_file() else None
    try:
        with atomic_path(config_path) as config_part:
            config_part.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            if sums is not None:
                write_text_atomic(sums_path, json.dumps(sums | {CONFIG_FILE: sha256_of(config_part)}, indent=2) + "\n")
    except OSError as error:
        raise OutputError(f"{config_path}: cannot write ({error.strerror or error})", code="E_WRITE") from None
    return config_path
