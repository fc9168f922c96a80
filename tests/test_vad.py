"""The chunk plan (vad.plan_speech): what transcribe cuts an input into once silero has found its speech."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from omniavsr_cli.vad import SpeechDetector, VadOptions, pad_chunks, plan_chunks, plan_speech, regions_to_frames

FRAME = 640  # samples per 25 fps frame


@st.composite
def inputs(draw):
    """An input's length in samples and silero-like regions in it: sorted, disjoint, often less than a frame apart."""
    gaps = draw(st.lists(st.integers(0, 40_000), min_size=1, max_size=30))
    lengths = draw(st.lists(st.integers(1, 300_000), min_size=len(gaps), max_size=len(gaps)))
    regions, t = [], 0
    for gap, length in zip(gaps, lengths):
        regions.append((t + gap, t + gap + length))
        t += gap + length
    return regions, t + draw(st.integers(0, 40_000))


@settings(max_examples=400, deadline=None)
@given(inputs(), st.integers(25, 400), st.integers(0, 1000))
def test_chunks_are_sorted_disjoint_within_the_input_and_the_limit_and_cover_the_speech(drawn, max_frames, pad_ms):
    regions, samples = drawn
    chunks = plan_speech(regions, samples, max_frames, pad_ms)
    assert all(0 <= start < end <= math.ceil(samples / FRAME) and end - start <= max_frames for start, end in chunks)
    assert all(a[1] <= b[0] for a, b in zip(chunks, chunks[1:]))  # sorted, and no frame in two chunks
    covered = {frame for start, end in chunks for frame in range(start, end)}
    for start, end in regions:
        assert set(range(start // FRAME, math.ceil(end / FRAME))) <= covered


def test_regions_less_than_a_frame_apart_become_one():
    # 0.080-3.900 s and 3.895-6.160 s both touch frame 97: they used to become chunks 0.080-3.920 and 3.880-6.160.
    assert regions_to_frames([(1280, 62400), (62320, 98560)]) == [(2, 154)]
    assert regions_to_frames([(100, 700), (640, 1280)]) == [(0, 2)]
    assert regions_to_frames([(0, 640), (640, 1280)]) == [(0, 1), (1, 2)]  # touching, not sharing: kept apart


def test_speech_gets_context_on_both_sides_as_far_as_the_input_neighbours_and_limit_allow():
    # 400 ms = 10 frames: in full where there is room, clipped at the input's ends, the gap between close
    # neighbours split in the middle.
    assert plan_speech([(30 * FRAME, 80 * FRAME)], 200 * FRAME, 100, 400) == [(20, 90)]
    assert plan_speech([(3 * FRAME, 80 * FRAME)], 85 * FRAME, 100, 400) == [(0, 85)]
    assert plan_speech([(20 * FRAME, 60 * FRAME), (66 * FRAME, 90 * FRAME)], 200 * FRAME, 60, 400) == [(10, 63), (63, 100)]
    # A chunk never grows past the limit: the room left is shared between the two sides.
    assert pad_chunks([(20, 110)], 200, 100, 10) == [(15, 115)]
    assert pad_chunks([(2, 92)], 200, 100, 10) == [(0, 100)]


def test_chunks_leave_room_for_the_context():
    # Two 30-frame regions 10 frames apart fill 70 of 100 frames: together they would leave 15 frames a side,
    # enough for 10 frames of context; with 20 frames of context wanted they are planned apart.
    assert plan_chunks([(0, 30), (40, 70)], 100, context=10) == [(0, 70)]
    assert plan_chunks([(0, 30), (40, 70)], 100, context=20) == [(0, 30), (40, 70)]
    assert plan_chunks([(0, 90)], 100, context=20) == [(0, 90)]  # one region keeps whole, with less context


@pytest.mark.parametrize("block", [511, 7_777, 960_000])
def test_speech_found_block_by_block_is_what_silero_finds_in_the_whole(block):
    """transcribe feeds silero the decoded audio as it streams: the regions must not depend on the blocks."""
    from faces import speech_like

    from omniavsr_cli.vad import _model, _silero

    rng = np.random.default_rng(block)
    pattern, t = [], 0.3
    while t < 50:
        length = rng.uniform(0.3, 6)
        pattern.append((t, t + length))
        t += length + rng.uniform(0.05, 2)
    audio = speech_like(pattern, 55.0)[: -rng.integers(1, 512)]
    audio += (0.01 * rng.standard_normal(len(audio))).astype(np.float32)
    options = VadOptions()
    whole = _silero().get_speech_timestamps(
        torch.from_numpy(audio),
        _model(),
        threshold=options.threshold,
        sampling_rate=16000,
        min_speech_duration_ms=options.min_speech_ms,
        max_speech_duration_s=3.9,
        min_silence_duration_ms=options.min_silence_ms,
        speech_pad_ms=0,
    )
    detector = SpeechDetector()
    for start in range(0, len(audio), block):
        detector.feed(audio[start : start + block])
    assert detector.samples == len(audio)
    found = detector.regions(3.9, options)
    assert len(found) > 8 and found == [(r["start"], r["end"]) for r in whole]
