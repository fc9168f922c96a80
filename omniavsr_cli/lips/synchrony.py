"""How well a face's mouth movement follows the audio: the light active-speaker baseline (docs/speakers.md).

Per 25 fps frame, :func:`mouth_opening` measures the inner-lip gap of a face's 68 landmarks and
:func:`audio_envelope` the speech energy of the frame's 640 samples (in the 0.5-4 kHz band by default);
:func:`sync_score` correlates the two over a span of frames, at the best lag within +-``max_lag`` frames. The speaking face is the one
whose mouth follows the audio; docs/speakers.md has the measurements that chose the defaults.
"""

from __future__ import annotations

import numpy as np

from ..timebase import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME

METHODS = ("pearson+diff", "pearson", "diff", "spearman", "bandpass")
# Lips move up to 200 ms before the sound they shape and video/audio muxing adds its own offset: +-5 frames.
MAX_LAG_FRAMES = 5
# Fewer frames than this (0.4 s) with both a mouth and audio give no score: a correlation over a handful
# of frames is mostly chance.
MIN_FRAMES = 10
# RMS floor, -80 dBFS: quieter frames count as silence (equal envelope values), so digital silence
# has a flat envelope and scores NaN instead of correlating with noise below hearing.
ENVELOPE_FLOOR = 1e-4
# The envelope's band: the formant and frication region that the lips shape. Voicing below 500 Hz goes on
# through closed lips (nasals, voiced stops), so it is left out; with it the distractor mouths of
# docs/speakers.md's two-face clips were found off screen less often (AUC 0.93 -> 0.96).
SPEECH_BAND_HZ = (500.0, 4000.0)
# The syllable rhythm in which mouth area and acoustic envelope covary (Chandrasekaran et al. 2009).
BAND_HZ = (2.0, 7.0)
# Inner-lip point pairs, upper and lower lip: 61-67, 62-66, 63-65 (iBUG order, 0-based).
_INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """(T, 68, 2) landmarks -> (T,) mean inner-lip gap over the mouth width |p48 - p54|, NaN where a frame has none.

    Dividing by the mouth width makes the measure independent of face size (distance to the camera); it
    also grows when the lips round (narrower mouth), which is articulation too.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (68, 2):
        raise ValueError(f"landmarks of shape {points.shape}: expected (frames, 68, 2)")
    upper = points[:, [pair[0] for pair in _INNER_LIP_PAIRS]]
    lower = points[:, [pair[1] for pair in _INNER_LIP_PAIRS]]
    gap = np.linalg.norm(upper - lower, axis=2).mean(axis=1)
    width = np.linalg.norm(points[:, 48] - points[:, 54], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(width > 0, gap / width, np.nan)


def audio_envelope(
    samples: np.ndarray,
    samples_per_frame: int = SAMPLES_PER_FRAME,
    *,
    band: tuple[float, float] | None = SPEECH_BAND_HZ,
    log: bool = False,
) -> np.ndarray:
    """16 kHz mono samples -> (T,) RMS of each frame's ``samples_per_frame`` samples (a partial last frame
    counts) within ``band`` Hz (None: all of it), in log10 when ``log``; values below
    :data:`ENVELOPE_FLOOR` are raised to it.

    The band's RMS is taken from each frame's spectrum (Parseval), so a sine inside it keeps its RMS.
    Linear RMS is the default: it separated speakers as well as log RMS under babble noise and clearly
    better in clean speech, where log RMS is dominated by the jump from silent pauses (docs/speakers.md).
    """
    samples = np.asarray(samples, dtype=np.float64).ravel()
    frames = -(-len(samples) // samples_per_frame)
    padded = np.zeros(frames * samples_per_frame)
    padded[: len(samples)] = samples
    blocks = padded.reshape(frames, samples_per_frame)
    # the partial last frame is averaged over its real samples only
    counts = np.full(frames, samples_per_frame)
    if frames and len(samples) % samples_per_frame:
        counts[-1] = len(samples) % samples_per_frame
    if band is None:
        energy = (blocks**2).sum(axis=1)
    else:
        spectrum = np.abs(np.fft.rfft(blocks, axis=1)) ** 2
        hertz = np.fft.rfftfreq(samples_per_frame, d=1 / SAMPLE_RATE)
        inside = (hertz >= band[0]) & (hertz <= band[1]) & (hertz > 0) & (hertz < SAMPLE_RATE / 2)
        # each bin between DC and Nyquist stands for a positive and a negative frequency
        energy = 2 * spectrum[:, inside].sum(axis=1) / samples_per_frame
    rms = np.maximum(np.sqrt(energy / counts), ENVELOPE_FLOOR)
    return np.log10(rms) if log else rms


class EnvelopeStream:
    """:func:`audio_envelope` of audio that arrives in blocks of any length (a partial frame waits for the next)."""

    def __init__(self, samples_per_frame: int = SAMPLES_PER_FRAME):
        self.samples_per_frame = samples_per_frame
        self._parts: list[np.ndarray] = []
        self._carry = np.zeros(0, np.float32)

    def feed(self, block: np.ndarray) -> None:
        joined = np.concatenate([self._carry, np.asarray(block, dtype=np.float32).ravel()])
        whole = len(joined) // self.samples_per_frame * self.samples_per_frame
        if whole:
            self._parts.append(audio_envelope(joined[:whole], self.samples_per_frame))
        self._carry = joined[whole:]

    def envelope(self) -> np.ndarray:
        """The envelope of everything fed so far, a partial last frame included."""
        tail = [audio_envelope(self._carry, self.samples_per_frame)] if len(self._carry) else []
        return np.concatenate(self._parts + tail) if self._parts or tail else np.zeros(0)


def sync_score(opening: np.ndarray, envelope: np.ndarray, max_lag: int = MAX_LAG_FRAMES, method: str = "pearson+diff") -> tuple[float, int]:
    """The highest correlation of ``opening`` and ``envelope`` over lags -max_lag..max_lag, and its lag.

    Lag L pairs ``opening[t]`` with ``envelope[t - L]``: a positive lag is a mouth moving after the sound,
    a negative one a mouth ahead of it (as lips are at speech onsets). Both curves are one value per
    frame; the longer is cut to the shorter. Frames where ``opening`` is NaN (no detection) are left out.
    ``method``: ``pearson+diff`` (the mean of the next two at the same lag: how the mouth's openness
    follows the loudness, and how its movements follow the loudness's changes), ``pearson`` (the curves
    as they are), ``diff`` (their frame-to-frame changes), ``spearman`` (ranks), ``bandpass`` (both
    restricted to :data:`BAND_HZ`).

    Returns (NaN, 0) when there is nothing to judge: fewer than :data:`MIN_FRAMES` frames with both
    values at every lag, or either curve flat (silence, or a mouth that never moves). NaN means "no
    evidence", not "not speaking"; a caller choosing a speaker ranks NaN below every number.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    frames = min(len(opening), len(envelope))
    mouth = np.asarray(opening, dtype=np.float64)[:frames]
    sound = np.asarray(envelope, dtype=np.float64)[:frames]
    if method == "bandpass":
        mouth, sound = _band_passed(mouth), _band_passed(sound)
    best, best_lag = np.nan, 0
    for lag in range(-max_lag, max_lag + 1):
        moved = mouth[lag:] if lag >= 0 else mouth[: len(mouth) + lag]
        heard = sound[: len(sound) - lag] if lag >= 0 else sound[-lag:]
        # the pairs of curves correlated at this lag; differences are taken after the shift, so both methods
        # of pearson+diff look at the same frames
        pairs = {"diff": [(np.diff(moved), np.diff(heard))], "pearson+diff": [(moved, heard), (np.diff(moved), np.diff(heard))]}
        values = []
        for mouth_part, sound_part in pairs.get(method, [(moved, heard)]):
            valid = ~(np.isnan(mouth_part) | np.isnan(sound_part))
            if valid.sum() < MIN_FRAMES:
                return np.nan, 0
            values.append(_correlation(mouth_part[valid], sound_part[valid], ranked=method == "spearman"))
        value = float(np.mean(values))
        if np.isnan(value):
            return np.nan, 0
        if np.isnan(best) or value > best:
            best, best_lag = value, lag
    return float(best), best_lag


def _correlation(a: np.ndarray, b: np.ndarray, *, ranked: bool) -> float:
    if _flat(a) or _flat(b):
        return np.nan
    if ranked:
        a, b = _ranks(a), _ranks(b)
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a**2).sum() * (b**2).sum()))


def _flat(curve: np.ndarray) -> bool:
    # relative to the values' own size, so rounding noise on a constant curve still counts as flat
    return float(np.ptp(curve)) <= 1e-9 * float(np.abs(curve).max())


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1, tied values sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    _, group, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.bincount(group, ranks) / counts)[group]


def _band_passed(curve: np.ndarray) -> np.ndarray:
    """The curve's :data:`BAND_HZ` content (FFT mask); NaN frames are bridged by linear interpolation for
    the filter and stay NaN in the result."""
    missing = np.isnan(curve)
    if missing.all() or len(curve) < 2:
        return np.full(len(curve), np.nan)
    frames = np.arange(len(curve))
    filled = np.interp(frames, frames[~missing], curve[~missing])
    spectrum = np.fft.rfft(filled - filled.mean())
    hertz = np.fft.rfftfreq(len(filled), d=1 / FPS)
    spectrum[(hertz < BAND_HZ[0]) | (hertz > BAND_HZ[1])] = 0
    passed = np.fft.irfft(spectrum, n=len(filled))
    passed[missing] = np.nan
    return passed
