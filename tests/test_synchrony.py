"""Mouth-audio synchrony: opening and envelope measures, the lag search, missing frames and silence."""

from __future__ import annotations

import numpy as np
import pytest

from omniavsr_cli.lips.synchrony import (
    ENVELOPE_FLOOR,
    METHODS,
    MIN_FRAMES,
    SPEECH_BAND_HZ,
    audio_envelope,
    mouth_opening,
    sync_score,
)


def speech_like_envelope(frames: int, seed: int = 0) -> np.ndarray:
    """Syllable-rate bursts (about 4 per second) with pauses, like a speech RMS curve at 25 fps."""
    rng = np.random.default_rng(seed)
    bursts = np.zeros(frames)
    bursts[rng.choice(frames, frames // 6, replace=False)] = rng.uniform(0.5, 1.0, frames // 6)
    kernel = np.hanning(7)
    return np.convolve(bursts, kernel, mode="same") + 0.01


def delayed(curve: np.ndarray, frames: int) -> np.ndarray:
    return np.concatenate([np.full(frames, curve[0]), curve[:-frames]])


@pytest.mark.parametrize("method", METHODS)
def test_a_mouth_following_the_sound_three_frames_late_scores_high_at_lag_three(method):
    envelope = speech_like_envelope(100)
    score, lag = sync_score(delayed(envelope, 3), envelope, method=method)
    assert lag == 3
    assert score > 0.9


def test_a_mouth_ahead_of_the_sound_has_a_negative_lag():
    envelope = speech_like_envelope(100)
    _, lag = sync_score(envelope[2:], envelope[:-2])
    assert lag == -2


@pytest.mark.parametrize("method", METHODS)
def test_an_unrelated_mouth_scores_low_and_below_the_true_one(method):
    envelope = speech_like_envelope(100, seed=1)
    other = speech_like_envelope(100, seed=2)
    unrelated, _ = sync_score(other, envelope, method=method)
    true, _ = sync_score(envelope + 0.05 * other, envelope, method=method)
    assert unrelated < 0.5
    assert true > unrelated + 0.4


def test_the_lag_search_stops_at_max_lag():
    envelope = speech_like_envelope(100)
    _, lag = sync_score(delayed(envelope, 8), envelope, max_lag=5)
    assert abs(lag) <= 5
    score, lag = sync_score(delayed(envelope, 8), envelope, max_lag=8)
    assert lag == 8 and score > 0.99


def test_missing_frames_are_left_out_not_counted_as_zero():
    envelope = speech_like_envelope(100)
    mouth = delayed(envelope, 2)
    mouth[30:45] = np.nan
    score, lag = sync_score(mouth, envelope)
    assert lag == 2 and score > 0.99
    assert sync_score(mouth, envelope, method="bandpass")[1] == 2


def test_too_few_frames_with_a_mouth_give_nan():
    envelope = speech_like_envelope(100)
    mouth = np.full(100, np.nan)
    mouth[40 : 40 + MIN_FRAMES - 1] = envelope[40 : 40 + MIN_FRAMES - 1]
    score, lag = sync_score(mouth, envelope)
    assert np.isnan(score) and lag == 0


@pytest.mark.parametrize("method", METHODS)
def test_silence_and_a_still_mouth_give_nan(method):
    mouth = speech_like_envelope(100)
    silence = audio_envelope(np.zeros(100 * 640))
    assert np.isnan(sync_score(mouth, silence, method=method)[0])
    assert np.isnan(sync_score(np.full(100, 0.2), speech_like_envelope(100), method=method)[0])


def test_curves_of_different_length_are_cut_to_the_shorter():
    envelope = speech_like_envelope(120)
    score, lag = sync_score(delayed(envelope, 1)[:90], envelope)
    assert lag == 1 and score > 0.99


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="pearson"):
        sync_score(np.zeros(20), np.zeros(20), method="cosine")


def test_audio_envelope_is_the_rms_of_each_640_sample_frame():
    samples = np.concatenate([np.full(640, 0.5), np.full(640, -0.25), np.zeros(640), np.full(320, 0.1)])
    np.testing.assert_allclose(audio_envelope(samples, band=None), [0.5, 0.25, ENVELOPE_FLOOR, 0.1])
    np.testing.assert_allclose(audio_envelope(samples, band=None, log=True), np.log10([0.5, 0.25, ENVELOPE_FLOOR, 0.1]))


def sine(hertz: float, amplitude: float, samples: int) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * hertz * np.arange(samples) / 16_000)


def test_the_default_envelope_keeps_the_rms_inside_the_speech_band_only():
    assert SPEECH_BAND_HZ[0] < 1000 < SPEECH_BAND_HZ[1]
    inside = sine(1000, 0.4, 3 * 640)  # a whole number of periods per frame: no leakage
    below, above = sine(100, 0.4, 3 * 640), sine(6000, 0.4, 3 * 640)
    np.testing.assert_allclose(audio_envelope(inside), 0.4 / np.sqrt(2), rtol=1e-9)
    np.testing.assert_allclose(audio_envelope(inside + below + above), 0.4 / np.sqrt(2), rtol=1e-9)
    np.testing.assert_allclose(audio_envelope(below + above), ENVELOPE_FLOOR)
    np.testing.assert_allclose(audio_envelope(np.full(640, 0.5)), ENVELOPE_FLOOR)  # DC is not speech


def test_pearson_plus_diff_is_the_mean_of_the_two_at_the_same_lag():
    envelope = speech_like_envelope(100, seed=3)
    mouth = envelope + 0.3 * speech_like_envelope(100, seed=4)
    combined, lag = sync_score(mouth, envelope, max_lag=0)
    level, _ = sync_score(mouth, envelope, max_lag=0, method="pearson")
    change, _ = sync_score(mouth, envelope, max_lag=0, method="diff")
    assert lag == 0
    assert combined == pytest.approx((level + change) / 2)


def lips(gap: float, width: float, scale: float = 1.0) -> np.ndarray:
    points = np.zeros((68, 2))
    points[48], points[54] = [-width / 2, 0], [width / 2, 0]
    for x, (upper, lower) in zip((-8, 0, 8), ((61, 67), (62, 66), (63, 65))):
        points[upper] = [x, -gap / 2]
        points[lower] = [x, gap / 2]
    return points * scale


def test_mouth_opening_is_the_inner_lip_gap_over_the_mouth_width():
    landmarks = np.stack([lips(0.0, 50), lips(10.0, 50), lips(10.0, 50, scale=3), np.full((68, 2), np.nan)])
    opening = mouth_opening(landmarks)
    np.testing.assert_allclose(opening[:3], [0.0, 0.2, 0.2])
    assert np.isnan(opening[3])


def test_mouth_opening_checks_the_shape():
    with pytest.raises(ValueError, match="68, 2"):
        mouth_opening(np.zeros((10, 20, 2)))
