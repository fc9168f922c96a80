"""Word timings from the LLM's attention (omniavsr_cli/alignment.py): the DTW, the filters and the word grouping
on hand-made matrices, the attention hook against eager attention, and a bound on bundled clips with known word times."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from helpers import REPO
from peft.tuners.lora import LoraLayer

from omniavsr_cli import alignment
from omniavsr_cli.alignment import TokenAttention, Word
from omniavsr_cli.model.omni import Clip, left_pad
from omniavsr_cli.model.random_init import random_model, small_config, word_tokenizer

WORDS = REPO / "tests" / "data" / "words"


def _cheapest_total(cost: np.ndarray) -> float:
    """The textbook O(N M) recurrence, one cell at a time."""
    rows, cols = cost.shape
    total = np.full((rows + 1, cols + 1), np.inf)
    total[0, 0] = 0.0
    for i, j in itertools.product(range(1, rows + 1), range(1, cols + 1)):
        total[i, j] = cost[i - 1, j - 1] + min(total[i - 1, j - 1], total[i - 1, j], total[i, j - 1])
    return float(total[rows, cols])


def _check_path(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> None:
    assert (rows[0], cols[0]) == (0, 0) and (rows[-1], cols[-1]) == (shape[0] - 1, shape[1] - 1)
    steps = np.stack([np.diff(rows), np.diff(cols)], axis=1)
    assert {tuple(step) for step in steps} <= {(0, 1), (1, 0), (1, 1)}


def test_dtw_follows_a_hand_made_diagonal_of_blocks():
    # three tokens over eight positions: token 0 at 0-1, token 1 at 2-4, token 2 at 5-7
    cost = np.ones((3, 8))
    cost[0, :2] = cost[1, 2:5] = cost[2, 5:] = -1.0
    rows, cols = alignment.dtw(cost)
    _check_path(rows, cols, cost.shape)
    assert [int(cols[rows == k].min()) for k in range(3)] == [0, 2, 5]
    assert [int(cols[rows == k].max()) for k in range(3)] == [1, 4, 7]


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (7, 30), (30, 7), (12, 12)])
def test_dtw_finds_a_cheapest_monotonic_path(shape):
    cost = np.random.default_rng(sum(shape)).normal(size=shape)
    rows, cols = alignment.dtw(cost)
    _check_path(rows, cols, shape)
    assert cost[rows, cols].sum() == pytest.approx(_cheapest_total(cost))


def test_median_filter_reflects_at_the_edges():
    x = np.array([[5.0, 1.0, 9.0, 2.0, 7.0, 3.0]])
    padded = np.array([9.0, 1.0, 5.0, 1.0, 9.0, 2.0, 7.0, 3.0, 7.0, 2.0])  # reflect by 2 on each side
    expected = [np.median(padded[k : k + 5]) for k in range(6)]
    assert alignment.median_filter(x, 5)[0].tolist() == expected
    assert alignment.median_filter(x, 1).tolist() == x.tolist()
    with pytest.raises(ValueError, match="odd"):
        alignment.median_filter(x, 4)


def test_the_median_filter_spans_at_most_whispers_140_ms():
    assert [alignment.median_width_for(step) for step in (0.02, 0.04, 0.08, 0.2, 0.32)] == [7, 3, 1, 1, 1]


def test_token_spans_skip_the_silence_before_the_first_token_and_the_pause_after_a_word():
    # 20 columns: silence 0-3, token 0 at 4-7, a pause 8-10 weakly like token 0, token 1 at 11-15, then EOS
    matrix = np.full((3, 20), -1.0)
    matrix[0, 4:8], matrix[0, 8:11] = 2.0, 0.3
    matrix[1, 11:16] = 2.0
    matrix[2, 16:] = 1.0
    starts, ends = alignment.token_spans(matrix)
    assert starts.tolist()[:2] == [4, 11] and ends.tolist()[:2] == [8, 16]


def _attention_for(spans: list[list[tuple[int, int]]], positions: int, heads: int = 2) -> np.ndarray:
    """(heads, tokens, positions) weights: each token looks at its spans, a little everywhere else."""
    weights = np.full((heads, len(spans), positions), 0.01)
    for token, parts in enumerate(spans):
        for first, last in parts:
            weights[:, token, first:last] = 1.0
    return weights / weights.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def grid_tokenizer():
    return word_tokenizer(small_config())


def test_align_words_times_each_word_by_the_tokens_it_attends_to(grid_tokenizer):
    ids = grid_tokenizer("the a and", add_special_tokens=False).input_ids
    # audio rate 4 (80 ms a position), 25 positions = 2 s; EOS looks at the silence (as the demo model's does)
    weights = _attention_for([[(3, 6)], [(6, 10)], [(11, 15)], [(0, 3), (15, 25)]], 25)
    attention = TokenAttention(weights, None, np.log(np.array([0.9, 0.5, 0.8, 0.99])))
    words = alignment.align_words(attention, ids, grid_tokenizer, alignment.seconds_per_position((4, 2)), 10.0, 12.0)
    assert [w.word for w in words] == ["the", " a", " and"]  # whisper's words keep their leading space
    assert [t for w in words for t in (w.start, w.end)] == pytest.approx([10.24, 10.48, 10.48, 10.8, 10.88, 11.2], abs=0.05)
    assert [w.probability for w in words] == [0.9, 0.5, 0.8]


def test_audio_and_video_of_different_periods_add_up_on_one_grid(grid_tokenizer):
    ids = grid_tokenizer("the a", add_special_tokens=False).input_ids
    steps = alignment.seconds_per_position((16, 5))  # 320 ms and 200 ms a position
    audio = _attention_for([[(1, 3)], [(3, 4)], [(0, 1), (4, 5)]], 5)  # 0.32-0.96, 0.96-1.28, EOS around them
    video = _attention_for([[(2, 5)], [(5, 7)], [(0, 2), (7, 8)]], 8)  # 0.40-1.00, 1.00-1.40, EOS around them
    attention = TokenAttention(audio, video, np.zeros(3))
    both = alignment.align_words(attention, ids, grid_tokenizer, steps, 0.0, 1.6)
    assert [t for w in both for t in (w.start, w.end)] == pytest.approx([0.4, 1.0, 1.0, 1.3], abs=0.1)
    alone = alignment.align_words(attention, ids, grid_tokenizer, steps, 0.0, 1.6, modalities=("video",))
    assert alone[0].start == pytest.approx(0.4, abs=0.1)


def test_word_times_stay_inside_the_segment_in_order_and_apart(grid_tokenizer):
    rng = np.random.default_rng(5)
    for _ in range(30):
        count, positions = int(rng.integers(1, 12)), int(rng.integers(3, 40))
        ids = grid_tokenizer(" ".join(rng.choice(["the", "a", "and", "to"], count)), add_special_tokens=False).input_ids
        weights = rng.dirichlet(np.ones(positions) * 0.3, size=(2, count + 1))
        attention = TokenAttention(weights, None, np.log(rng.uniform(0.1, 1, count + 1)))
        start = round(float(rng.uniform(0, 100)), 3)  # segments are timed to the millisecond
        end = round(start + positions * 0.08 * float(rng.uniform(0.5, 1.0)), 3)  # it may end before the last token
        words = alignment.align_words(attention, ids, grid_tokenizer, {"audio": 0.08}, start, end)
        assert len(words) == count
        assert all(start <= w.start <= w.end <= end + 1e-9 for w in words)
        assert all(a.end <= b.start for a, b in itertools.pairwise(words))


def test_a_too_long_word_is_cut_at_its_end_and_the_first_at_its_start():
    words = [("a", 0.0, 1.5, 1.0), ("b", 1.5, 1.8, 1.0), ("c", 1.8, 2.1, 1.0), ("d", 2.1, 3.5, 1.0), ("e", 3.5, 3.8, 1.0)]
    tidied = alignment.tidy(words, 0.0, 4.0)
    assert [(round(s, 3), round(e, 3)) for _, s, e, _ in tidied] == [(0.9, 1.5), (1.5, 1.8), (1.8, 2.1), (2.1, 2.7), (3.5, 3.8)]


def test_a_word_level_tokenizer_gives_one_word_per_token(grid_tokenizer):
    ids = grid_tokenizer("the a and to", add_special_tokens=False).input_ids
    assert alignment.split_words(ids, grid_tokenizer) == [("the", [0]), (" a", [1]), (" and", [2]), (" to", [3])]


def test_the_demo_models_tokenizer_gives_one_word_per_token():
    from omniavsr_cli.model.loading import load_model

    tokenizer = load_model("demo").tokenizer
    ids = tokenizer("set red in o five please", add_special_tokens=False).input_ids
    assert [text.strip() for text, _ in alignment.split_words(ids, tokenizer)] == "set red in o five please".split()


@pytest.fixture(scope="module")
def bpe_tokenizer():
    """A byte-level BPE like Llama 3's: a word's first piece carries its space (Ġ)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    text = ["place blue at f two now", "lay green by a one please", "set red in o five soon"] * 5
    tokenizer.train_from_iterator(text, trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer)


def test_a_bpe_tokenizer_starts_a_word_at_each_piece_with_a_space(bpe_tokenizer):
    text = "placement bluest, atoms café"
    ids = bpe_tokenizer(text, add_special_tokens=False).input_ids
    words = alignment.split_words(ids, bpe_tokenizer)
    assert len(ids) > 4  # unseen words are split into several pieces
    assert [w for w, _ in words] == ["placement", " bluest,", " atoms", " café"]  # the comma stays with its word
    assert [i for _, indices in words for i in indices] == list(range(len(ids)))
    assert "".join(w for w, _ in words) == text


def test_default_heads_are_the_upper_half_of_the_layers():
    config = small_config()
    assert alignment.default_heads(config) == [(1, 0), (1, 1), (1, 2), (1, 3)]
    assert alignment.check_heads(config, [(1, 2), (0, 3), (1, 2)]) == [(0, 3), (1, 2)]
    with pytest.raises(ValueError, match="not in a model"):
        alignment.check_heads(config, [(2, 0)])


@pytest.fixture(scope="module")
def adapted_model():
    """The tiny random model with every LoRA adapter acting (peft starts B at zero; random_model draws it)."""
    model = random_model(small_config(), seed=3).module
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.2, generator=torch.Generator().manual_seed(len(name)))
    return model


def _clips():
    generator = torch.Generator().manual_seed(0)
    return [
        Clip(audio=torch.randn(32000, generator=generator) * 0.1, video=torch.randn(50, 1, 88, 88, generator=generator)),
        Clip(audio=torch.randn(48000, generator=generator) * 0.1, video=torch.randn(75, 1, 88, 88, generator=generator)),
    ]


@pytest.mark.parametrize("task", ["asr", "vsr", "avsr"])
def test_the_layout_matches_the_prefix(adapted_model, task):
    clips, rates = _clips(), (4, 2)
    with torch.no_grad():
        prefixes = adapted_model.prefix_embeddings(clips, task, rates)
    layouts = [alignment.prefix_layout(adapted_model, clip, task, rates) for clip in clips]
    assert [layout.length for layout in layouts] == [len(prefix) for prefix in prefixes]
    tokens = adapted_model.config.tokens
    table = adapted_model.llm.get_input_embeddings().weight
    for prefix, layout in zip(prefixes, layouts):
        for span, opening, closing in (
            (layout.audio, tokens.audio_start, tokens.audio_end),
            (layout.video, tokens.video_start, tokens.video_end),
        ):
            if span is not None:
                assert torch.equal(prefix[span.start - 1], table[opening]) and torch.equal(prefix[span.stop], table[closing])


def test_the_hook_gives_what_eager_attention_gives_with_lora_active(adapted_model):
    model, task, rates = adapted_model, "avsr", (4, 2)
    clips, eos = _clips(), model.config.tokens.eos
    targets = [[1, 2, 3, eos], [5, 6, 7, 8, 9, 10, eos]]
    heads = [(0, 1), (1, 0), (1, 3)]
    with torch.no_grad():
        prefixes = model.prefix_embeddings(clips, task, rates)
    layouts = [alignment.prefix_layout(model, clip, task, rates) for clip in clips]
    passes = alignment.attention_to_prefix(model, prefixes, layouts, targets, task, heads)

    expected_logprobs = model.token_logprobs(clips, task, rates, targets)
    embed = model.llm.get_input_embeddings()
    embeds, mask = left_pad([torch.cat([p, embed(torch.tensor(t))]) for p, t in zip(prefixes, targets)])
    model.llm.config._attn_implementation = "eager"
    try:
        with torch.no_grad():
            output = model.llm(
                inputs_embeds=embeds, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0), output_attentions=True
            )
    finally:
        model.llm.config._attn_implementation = "sdpa"
    length = embeds.shape[1]
    for row, (ids, layout, result) in enumerate(zip(targets, layouts, passes)):
        start = length - len(prefixes[row]) - len(ids)
        eager = torch.stack([output.attentions[layer][row, head, length - len(ids) - 1 : length - 1] for layer, head in heads]).numpy()
        assert result.audio.shape == (3, len(ids), len(layout.audio))
        np.testing.assert_allclose(result.audio, eager[:, :, start + layout.audio.start : start + layout.audio.stop], atol=1e-6)
        np.testing.assert_allclose(result.video, eager[:, :, start + layout.video.start : start + layout.video.stop], atol=1e-6)
        np.testing.assert_allclose(result.logprobs, expected_logprobs[row].detach().numpy(), atol=1e-5)
    # the adapters matter: without them the same heads attend differently
    adapted = [module for module in model.llm.modules() if isinstance(module, LoraLayer)]
    for module in adapted:
        module.enable_adapters(False)
    try:
        plain = alignment.attention_to_prefix(model, prefixes, layouts, targets, task, heads)
    finally:
        for module in adapted:
            module.enable_adapters(True)
    assert np.abs(plain[0].audio - passes[0].audio).max() > 1e-5  # a hundred times the agreement with eager


def test_word_dicts_have_whispers_keys():
    assert Word("a", 0.1, 0.2, 0.9).to_dict() == {"word": "a", "start": 0.1, "end": 0.2, "probability": 0.9}


@pytest.mark.slow
def test_transcribes_word_times_on_the_bundled_held_out_clips_are_within_the_acceptance_bounds():
    """The shipped path (load_model, transcribe_many with its defaults: VAD chunks, FaceMesh crops, beam search,
    the demo model's heads) on twelve clips it never saw, scored on the words it decoded."""
    from omniavsr_cli import load_model
    from omniavsr_cli.scoring.word_times import WordTime, read_word_times, summarise, timing_errors

    model = load_model("demo")
    reference = read_word_times(WORDS / "words.json")
    names = sorted(reference)
    for mode, rates, median_s, within in (("avsr", (4, 2), 0.08, 0.9), ("asr", (4, 2), 0.08, 0.9), ("vsr", (4, 2), 0.12, 0.85)):
        errors = []
        for result in model.transcribe_many([WORDS / f"{name}.mp4" for name in names], mode=mode, rates=rates):
            segments = result.transcript.segments
            assert segments and all("".join(w.word for w in s.words) == s.text for s in segments)  # the words are the text
            words = [w for segment in segments for w in segment.words]
            errors += timing_errors([WordTime(w.word.strip(), w.start, w.end) for w in words], reference[names[result.index]])
        numbers = summarise(errors)
        assert numbers["count"] >= 60, mode  # most of the 72 words recognised, so most are measured
        assert numbers["start"]["median"] <= median_s and numbers["end"]["median"] <= median_s, (mode, numbers)
        assert numbers["all"]["within_200ms"] >= within, (mode, numbers)
