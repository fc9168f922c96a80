"""Speech with its phoneme and word timings from libespeak-ng, through its C API (ctypes; no Python binding needed).

The command-line ``espeak-ng`` reports no timings (``--pho`` needs MBROLA voices, which Debian main lacks),
but the library's synthesis callback delivers phoneme and word events with their position in the audio.
libespeak-ng is process-global state that changes with every utterance, so each one is made in a forked process.

The library and its voices come from the ``espeakng-loader`` wheel (``pip install 'omniavsr[synth]'``) when it
is installed, else from the system (``apt-get install espeak-ng``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.metadata
import os
import pickle
from dataclasses import dataclass

import av
import numpy as np

from ..errors import ModelUnavailable
from ..timebase import SAMPLE_RATE

INSTALL = "pip install 'omniavsr[synth]' (or: apt-get install espeak-ng)"
ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt4")

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_INITIALIZE_DONT_EXIT = 0x8000  # a failed start returns 0 instead of ending the process
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_PHONEME = 0, 1, 7
_RATE, _PITCH, _RANGE = 1, 3, 4
_POSITION_CHARACTER = 1
_NO_STRESS = str.maketrans("", "", "ˈˌ")  # libespeak-ng 1.52 marks stress in phoneme names, 1.51 did not


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _CEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_CEvent))


@dataclass(frozen=True)
class Voice:
    accent: str  # an espeak-ng English voice
    variant: str  # an espeak-ng voice variant ("" for the accent's own)
    rate: int  # words per minute
    pitch: int  # 0-100
    pitch_range: int  # 0-100

    @property
    def name(self) -> str:
        return f"{self.accent}+{self.variant}" if self.variant else self.accent

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Voice:
        return cls(
            accent=str(rng.choice(ACCENTS)),
            variant=str(rng.choice(VARIANTS)),
            rate=int(rng.integers(130, 201)),
            pitch=int(rng.integers(25, 76)),
            pitch_range=int(rng.integers(30, 81)),
        )


@dataclass
class Utterance:
    audio: np.ndarray  # float32 at 16 kHz
    phonemes: list[tuple[float, str]]  # (start in seconds, IPA), "" where a pause or the end begins
    words: list[tuple[str, float, float]]  # (word as said, start, end in seconds): see word_spans


@dataclass(frozen=True)
class _Event:
    milliseconds: int  # position in the audio
    phoneme: str | None  # IPA ("" a pause or the end); None for a word event
    text_position: int = 0  # word events: where the word starts in the text (1-based characters) and its length
    length: int = 0


class EspeakUnavailable(ModelUnavailable):
    """``problem: fix`` as one line; doctor shows the two apart."""

    code = "E_NO_ESPEAK"

    def __init__(self, problem: str, fix: str = INSTALL):
        super().__init__(f"{problem}: {fix}" if fix else problem)
        self.problem, self.fix = problem, fix

    def __reduce__(self):  # it comes back from the forked child through pickle
        return type(self), (self.problem, self.fix)


class Speaker:
    """Synthesises text with a :class:`Voice`, each utterance in a freshly forked process.

    libespeak-ng carries state from one utterance to the next (the same text and voice twice in a row give
    different samples), so a corpus made in one process would depend on the order the clips were made in,
    and on how many workers made them. This process only loads the library; a forked child initialises it
    from its pristine state, synthesises one utterance and sends it back, so every utterance is a function of
    its text and voice alone. A fork costs a few milliseconds; synthesis about 5 ms per second of speech.

    ``source`` says which libespeak-ng speaks (the wheel's or the system's, and its version).
    """

    def __init__(self):
        self._lib, self._data, self.source = _open_library()

    def say(self, text: str, voice: Voice) -> Utterance:
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover (runs in the child, which leaves through os._exit)
            os.close(read_end)
            try:
                result = _synthesise(self._lib, self._data, text, voice)
            except EspeakUnavailable as error:
                result = error
            with os.fdopen(write_end, "wb") as out:
                pickle.dump(result, out)
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as answer:
            try:
                result = pickle.load(answer)
            except EOFError:
                result = EspeakUnavailable(f"libespeak-ng crashed while saying {text!r} with voice {voice.name!r}", fix="")
        os.waitpid(child, 0)
        if isinstance(result, EspeakUnavailable):
            raise result
        pcm, rate, events = result
        phonemes = [(event.milliseconds / 1000.0, event.phoneme.translate(_NO_STRESS)) for event in events if event.phoneme is not None]
        return Utterance(_resampled(pcm, rate), phonemes, word_spans(text, events, len(pcm) / rate))


def word_spans(text: str, events: list[_Event], seconds: float) -> list[tuple[str, float, float]]:
    """Each word libespeak-ng said in ``text`` (``seconds`` of audio), with where its sound starts and ends.

    A word starts at its first phoneme event, not at its word event: the word event comes where the previous
    word's sound stops, before the silent closure of a word-initial stop, the short gap before a fricative or
    the pause that opens the utterance. A word ends where its last phoneme does, at the next event after that
    phoneme's start: usually the next word's event (the closure or gap begins there) or a pause. Before a
    word that starts with a vowel, a final consonant is linked to it ("one again"): the next word's event
    then comes at the consonant's start, and the word ends at the vowel that follows.
    """
    spans = []
    words = [k for k, event in enumerate(events) if event.phoneme is None]
    for first, following in zip(words, [*words[1:], len(events)]):
        word = events[first]
        sounds = [k for k in range(first + 1, following) if events[k].phoneme]
        start = events[sounds[0]].milliseconds if sounds else word.milliseconds
        last = sounds[-1] if sounds else first
        later = [event.milliseconds for event in events[last + 1 :] if event.milliseconds > events[last].milliseconds]
        said = text[word.text_position - 1 : word.text_position - 1 + word.length]
        spans.append((said, start / 1000.0, later[0] / 1000.0 if later else seconds))
    return spans


def _open_library() -> tuple[ctypes.CDLL, bytes | None, str]:
    """libespeak-ng, the directory holding its espeak-ng-data (None: its compiled-in one) and where it comes from.

    The wheel comes first: its pinned library and voices make the same corpus on every machine. Its compiled-in
    data path is the one on the machine that built it, so its own data directory is always passed.
    """
    try:
        import espeakng_loader
    except ImportError:
        path = ctypes.util.find_library("espeak-ng")
        if path is None:
            raise EspeakUnavailable("libespeak-ng is not installed") from None
        try:
            lib = ctypes.CDLL(path)
        except OSError as error:
            raise EspeakUnavailable(f"the system libespeak-ng does not load ({error})") from None
        return lib, None, f"system libespeak-ng {_version(lib)} ({path})"
    wheel = importlib.metadata.version("espeakng-loader")
    try:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = os.path.dirname(espeakng_loader.get_data_path())
    except (OSError, RuntimeError) as error:  # RuntimeError: get_data_path found no voice data
        fix = f"pip install --force-reinstall espeakng-loader=={wheel}"
        raise EspeakUnavailable(f"the espeakng-loader wheel is damaged ({error})", fix) from None
    return lib, os.fsencode(data), f"espeakng-loader {wheel} wheel (libespeak-ng {_version(lib)})"


def _version(lib: ctypes.CDLL) -> str:
    lib.espeak_Info.restype = ctypes.c_char_p
    return lib.espeak_Info(None).decode()  # a constant: reading it leaves the library uninitialised


def _synthesise(lib, data: bytes | None, text: str, voice: Voice) -> tuple[np.ndarray, int, list[_Event]]:
    """In a fresh process: 16-bit samples at the library's rate and its phoneme and word events, in the order said."""
    options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA | _INITIALIZE_DONT_EXIT
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, options)
    if rate <= 0:
        raise EspeakUnavailable("libespeak-ng failed to start (its voice data is missing or of another version)")
    chunks: list[np.ndarray] = []
    events: list[_Event] = []

    def collect(samples, count, event_list) -> int:
        if count > 0:
            chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        i = 0
        while (event := event_list[i]).type != _EVENT_LIST_TERMINATED:
            if event.type == _EVENT_PHONEME:
                events.append(_Event(event.audio_position, event.id.string.decode("utf-8", "replace")))
            elif event.type == _EVENT_WORD:
                events.append(_Event(event.audio_position, None, event.text_position, event.length))
            i += 1
        return 0

    # Voices with breath (the f2, f3 and f5 variants) add noise from a generator libespeak-ng 1.52 seeds from the
    # clock; a fixed seed makes their speech, too, a function of the text and the voice. 1.51 lacks the call.
    if hasattr(lib, "espeak_ng_SetRandSeed"):
        lib.espeak_ng_SetRandSeed(ctypes.c_long(0))
    callback = _Callback(collect)  # referenced until synthesis is over
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
        raise EspeakUnavailable(f"espeak-ng has no voice {voice.name!r}", fix="")
    for parameter, value in ((_RATE, voice.rate), (_PITCH, voice.pitch), (_RANGE, voice.pitch_range)):
        lib.espeak_SetParameter(parameter, value, 0)
    encoded = text.encode()
    lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POSITION_CHARACTER, 0, 0, None, None)
    lib.espeak_Synchronize()
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.int16)), rate, events


def _resampled(pcm: np.ndarray, rate: int) -> np.ndarray:
    """int16 mono at ``rate`` -> float32 at 16 kHz, by libswresample (through PyAV)."""
    if not len(pcm):
        return np.zeros(0, np.float32)
    frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    return np.concatenate([out.to_ndarray()[0] for out in [*resampler.resample(frame), *resampler.resample(None)]])
