"""``omniavsr synth-corpus``: write a synthetic audio-visual corpus, each clip a function of (seed, index).

    OUT/clips/<id>.mp4             224x224 25 fps H.264 talking face + AAC speech (--faces 2: two faces, 448x224)
    OUT/clips/<id>.txt             the transcript (prep-lips --manifest reads it)
    OUT/clips/<id>.landmarks.npz   the 68 landmarks the frames were drawn with (prep-lips --detector landmarks:)
    OUT/corpus.jsonl               one record per clip: text, voice, sentence and word times, noise (--faces 2: who says each sentence)
    OUT/corpus.json                the options, so a rerun continues the same corpus
    OUT/babble.wav                 babble noise from talkers of this corpus's seed (for --snr, train --noise, eval --noise)

Clips are made in worker processes, each with its own libespeak-ng; a rerun skips the clips already
recorded in corpus.jsonl, so an interrupted run is finished by running it again (a corpus only grows: a
smaller ``clips`` than it holds is refused).
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import wave
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_text_atomic
from ..errors import InputError, UsageError, parameter
from ..timebase import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from . import grammar
from .face import Pose, TalkingFace, idle_track, mouth_track, portrait_landmarks
from .speech import Speaker, Voice

SPLITS = ("train", "test", "all")
DISTRACTORS = ("idle", "talking")
OFF_SCREEN = "off-screen"
# Clip ids number clips with six digits (clip_id), so that they sort in index order; a million clips of about
# 2.5 s is also some 700 hours and 200 GB (about 0.2 MB a clip), far past what a synthetic corpus is for.
MAX_CLIPS = 1_000_000
# Options added after corpora were already made: left out of corpus.json at their defaults, so those corpora still resume.
_LATER_DEFAULTS = {"faces": 1, "distractor": "idle", "offscreen": False}


@dataclass(frozen=True)
class CorpusOptions:
    clips: int
    seed: int = 0
    split: str = "train"  # which sentences: train, test (the held-out tenth, grammar.split_of) or all
    sentences: int = 1  # per clip, separated by pauses
    snr_db: float | None = None  # mix OUT/babble.wav into every clip at this SNR
    size: int = 224  # frame width and height
    babble_talkers: int = 6
    babble_seconds: float = 60.0
    faces: int = 1  # 2: two faces side by side, speakers taking turns sentence by sentence
    distractor: str = "idle"  # what the face that is not heard does: idle, or talking (mouths other sentences)
    offscreen: bool = False  # neither face says what is heard: a third voice speaks

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise UsageError(f"{parameter('split')} {self.split!r}: choose one of {', '.join(SPLITS)}")
        if self.clips < 1 or self.sentences < 1:
            raise UsageError(f"{parameter('clips')} and {parameter('sentences')} must be at least 1")
        if self.clips > MAX_CLIPS:
            raise UsageError(f"{parameter('clips')} {self.clips}: at most {MAX_CLIPS:,} (clip ids have six digits)")
        if self.seed < 0:
            raise UsageError(f"{parameter('seed')} {self.seed}: must be 0 or more")
        if self.snr_db is not None:
            from ..training.augment import check_snr  # the mixing's own rule

            check_snr(self.snr_db)
        if self.size < 96:
            raise UsageError(f"{parameter('size')} {self.size}: frames smaller than 96 px cannot hold a 96x96 mouth crop")
        if self.faces not in (1, 2):
            raise UsageError(f"{parameter('faces')} {self.faces}: choose 1 or 2")
        if self.distractor not in DISTRACTORS:
            raise UsageError(f"{parameter('distractor')} {self.distractor!r}: choose one of {', '.join(DISTRACTORS)}")
        if self.faces == 1 and (self.offscreen or self.distractor != "idle"):
            chosen = parameter("offscreen") if self.offscreen else f"{parameter('distractor')} {self.distractor}"
            raise UsageError(f"{chosen} is about the face that is not speaking: add {parameter('faces')} 2")


@dataclass
class CorpusResult:
    made: int
    skipped: int  # already in OUT from an earlier run
    directory: Path


def clip_id(options: CorpusOptions, index: int) -> str:
    return f"s{options.seed}-{index:06d}"


# ------------------------------------------------------------------------------------------------ babble


def babble(speaker: Speaker, rng: np.random.Generator, talkers: int, seconds: float) -> np.ndarray:
    """Several talkers saying GRID sentences at once, each at the same loudness: babble-like noise."""
    length = int(seconds * SAMPLE_RATE)
    mixture = np.zeros(length, np.float32)
    for _ in range(talkers):
        voice, stream, filled = Voice.draw(rng), [], 0
        while filled < length:
            words = speaker.say(grammar.spoken_form(grammar.sentence(rng)), voice).audio
            pause = np.zeros(int(rng.uniform(0.05, 0.3) * SAMPLE_RATE), np.float32)
            stream += [words, pause]
            filled += len(words) + len(pause)
        talker = np.concatenate(stream)[:length]
        mixture += talker / max(float(np.sqrt(np.mean(talker**2))), 1e-6)
    return (0.1 * mixture / np.sqrt(np.mean(mixture**2))).astype(np.float32)


# ------------------------------------------------------------------------------------------------ clips


class _Maker:
    """What one worker process needs: a speaker, the face, the corpus's options and its babble."""

    def __init__(self, options: CorpusOptions, landmarks: tuple[np.ndarray, ...], noise: np.ndarray | None, clips_dir: Path):
        self.options, self.noise, self.clips_dir = options, noise, clips_dir
        self.speaker = Speaker()
        self.faces = [TalkingFace(points, options.size, variant) for variant, points in enumerate(landmarks)]

    def make(self, index: int) -> dict:
        from ..media.encode import write_talking_video

        options = self.options
        rng = np.random.default_rng([options.seed, 1, index])
        voice, pose = Voice.draw(rng), Pose.draw(rng)
        texts = [grammar.sentence_in(options.split, rng) for _ in range(options.sentences)]
        # A second stream for what only two-face clips draw, so that one-face clips stay what they were.
        cast = _Cast.draw(options, voice, pose, np.random.default_rng([options.seed, 3, index]))
        pieces, phonemes, spans, words = [np.zeros(int(rng.uniform(0.15, 0.5) * SAMPLE_RATE), np.float32)], [], [], []
        for k, text in enumerate(texts):
            if k:
                pieces.append(np.zeros(int(rng.uniform(0.7, 1.2) * SAMPLE_RATE), np.float32))
            start = sum(map(len, pieces)) / SAMPLE_RATE
            utterance = self.speaker.say(grammar.spoken_form(text), cast.voice_of(k))
            phonemes += [(start + onset, name) for onset, name in utterance.phonemes]
            # spoken_form replaces words one for one, so word k said is word k of the transcript
            words += [
                {"word": word, "start": round(start + onset, 3), "end": round(start + offset, 3)}
                for word, (_, onset, offset) in zip(text.split(), utterance.words, strict=True)
            ]
            pieces.append(utterance.audio)
            spans.append([round(start, 3), round(start + len(utterance.audio) / SAMPLE_RATE, 3)])
        pieces.append(np.zeros(int(rng.uniform(0.15, 0.5) * SAMPLE_RATE), np.float32))
        speech = np.concatenate(pieces)
        frames = -(-len(speech) // SAMPLES_PER_FRAME)
        audio = np.zeros(frames * SAMPLES_PER_FRAME, np.float32)
        audio[: len(speech)] = speech * (10 ** (rng.uniform(-26, -18) / 20) / max(float(np.sqrt(np.mean(speech**2))), 1e-6))
        if options.snr_db is not None:
            from ..training.augment import mix_noise

            audio = mix_noise(_tensor(audio), self.noise, options.snr_db, rng).numpy()
        audio = np.clip(audio, -1.0, 1.0)
        name = clip_id(options, index)
        extra = {}
        if options.faces == 1:
            video, landmarks = self.faces[0].render(mouth_track(phonemes, frames), pose)
            arrays = {"points": landmarks}
        else:
            video, arrays, extra = self._two_faces(cast, spans, phonemes, frames)
        write_talking_video(self.clips_dir / f"{name}.mp4", video, audio)
        np.savez(self.clips_dir / f"{name}.landmarks.npz", **arrays, detected=np.ones(frames, bool), scores=np.ones(frames))
        text = " ".join(texts)
        write_text_atomic(self.clips_dir / f"{name}.txt", text + "\n")
        return {
            "id": name,
            "index": index,
            "text": text,
            "sentences": spans,
            "words": words,
            "frames": frames,
            "seconds": frames / FPS,
            "voice": asdict(cast.voice_of(0)),  # the first voice heard
            "snr_db": options.snr_db,
            **extra,
        }

    def _two_faces(self, cast: _Cast, spans: list[list[float]], heard: list[tuple[float, str]], frames: int) -> tuple:
        """Frames of both faces side by side, the npz arrays and the record's ``speakers``.

        Each face's mouth track is made from the phonemes it mouths: its own sentences (those it is heard
        saying) and, with ``distractor="talking"``, another sentence in its own voice, unheard, from the start
        of each sentence it does not say (cut where that sentence ends, so it never runs into its own turn).
        On top of that, both faces always move their lips a little (idle motion).
        """
        size = self.options.size
        mouthed: list[list[tuple[float, str]]] = [[], []]
        for k, (start, end) in enumerate(spans):
            for face in (0, 1):
                if cast.speakers[k] == face:
                    mouthed[face] += [(onset, name) for onset, name in heard if start - 0.001 <= onset < end] + [(end, "")]
                elif self.options.distractor == "talking":
                    other = self.speaker.say(grammar.spoken_form(cast.distractors[face][k]), cast.voices[face])
                    mouthed[face] += [(start + onset, name) for onset, name in other.phonemes if start + onset < end] + [(end, "")]
        videos, points = [], []
        for face in (0, 1):
            track = mouth_track(sorted(mouthed[face]), frames) + idle_track(cast.idle[face], frames)
            video, marks = self.faces[face].render(np.clip(track, 0.0, 1.0), cast.poses[face])
            videos.append(video)
            points.append(marks + [face * size, 0])  # face 1 is drawn in the right half
        points = np.stack(points, axis=1)
        speakers, shown = [], np.zeros(frames, np.int8)
        for k, (start, end) in enumerate(spans):
            face = cast.speakers[k]
            first, last = int(start * FPS), min(int(np.ceil(end * FPS)), frames)
            turn = {"start": start, "end": end, "face": OFF_SCREEN if face is None else face, "box": None}
            if face is not None:
                seen = points[first:last, face].reshape(-1, 2)
                turn["box"] = [round(float(v), 1) for v in (*seen.min(axis=0), *seen.max(axis=0))]
            turn["voice"] = asdict(cast.voice_of(k))
            speakers.append(turn)
        # `points` (what --detector landmarks: crops) follows the face heard: each frame takes the turn nearest in time.
        middles = np.array([(start + end) / 2 for start, end in spans])
        for index in range(frames):
            face = cast.speakers[int(np.argmin(np.abs(middles - (index + 0.5) / FPS)))]
            shown[index] = 0 if face is None else face
        arrays = {"points": points[np.arange(frames), shown], "faces": points, "face_of_points": shown}
        return np.concatenate(videos, axis=2), arrays, {"faces": 2, "speakers": speakers}


@dataclass(frozen=True)
class _Cast:
    """Who is in a two-face clip: each face's voice, pose, idle motion and unheard sentences, and who says sentence k."""

    voices: tuple[Voice, ...]
    poses: tuple[Pose, ...]
    speakers: tuple[int | None, ...]  # per sentence: the face heard saying it, None when a third voice off screen does
    off_screen_voice: Voice | None
    distractors: tuple[tuple[str, ...], ...]  # per face, per sentence: what it mouths when it is not heard
    idle: tuple[np.random.Generator, ...]

    @classmethod
    def draw(cls, options: CorpusOptions, voice: Voice, pose: Pose, rng: np.random.Generator) -> _Cast:
        if options.faces == 1:
            return cls((voice,), (pose,), (0,) * options.sentences, None, (), ())
        voices, poses = (voice, Voice.draw(rng)), (pose, Pose.draw(rng))
        first = int(rng.integers(2))
        off_screen_voice = Voice.draw(rng) if options.offscreen else None
        speakers = tuple(None if options.offscreen else (first + k) % 2 for k in range(options.sentences))
        distractors = tuple(tuple(grammar.sentence_in(options.split, rng) for _ in range(options.sentences)) for _ in (0, 1))
        idle = tuple(np.random.default_rng(rng.integers(2**63)) for _ in (0, 1))
        return cls(voices, poses, speakers, off_screen_voice, distractors, idle)

    def voice_of(self, sentence: int) -> Voice:
        face = self.speakers[sentence]
        return self.off_screen_voice if face is None else self.voices[face]


def _tensor(audio: np.ndarray):
    import torch

    return torch.from_numpy(audio)


_maker: _Maker | None = None


def _start_worker(*arguments) -> None:
    global _maker
    # A Ctrl-C reaches every process of the terminal's group: the main process stops the pool and reports it,
    # so a worker that also raised would only print its own traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _maker = _Maker(*arguments)


def _make(index: int) -> dict:
    return _maker.make(index)


# ------------------------------------------------------------------------------------------------ corpus


def _read_records(path: Path) -> dict[int, dict]:
    records = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                records[int(record["index"])] = record
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by an interruption: that clip is made again
    return records


def _check_count(out_dir: Path, options: CorpusOptions, records: dict[int, dict]) -> None:
    """A corpus only grows: a smaller ``clips`` would leave clips in OUT/clips that corpus.jsonl no longer lists."""
    beyond = sum(index >= options.clips for index in records)
    if beyond:
        raise UsageError(
            f"{out_dir}: already holds {len(records)} clips, {beyond} of them past {parameter('clips')} {options.clips}; "
            f"give at least {max(records) + 1} to finish or grow it, or make a smaller corpus in another directory"
        )


def _check_options(out_dir: Path, options: CorpusOptions) -> None:
    settings = out_dir / "corpus.json"
    recorded = {key: value for key, value in asdict(options).items() if key not in _LATER_DEFAULTS or _LATER_DEFAULTS[key] != value}
    if settings.exists():
        try:
            earlier = _LATER_DEFAULTS | json.loads(settings.read_text(encoding="utf-8")) | {"clips": None}
        except ValueError:
            earlier = None
        if earlier != asdict(options) | {"clips": None}:
            raise InputError(f"{out_dir}: holds a corpus made with other options ({settings}); choose another OUT or delete it")
    else:
        write_text_atomic(settings, json.dumps(recorded, indent=2) + "\n")


def generate(out_dir: Path, options: CorpusOptions, workers: int = 1, on_clip: Callable[[dict], None] | None = None) -> CorpusResult:
    """Make (or finish) the corpus in ``out_dir``."""
    out_dir = Path(out_dir)
    clips_dir = out_dir / "clips"
    try:
        clips_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{out_dir}: cannot create the corpus here ({error.strerror}); choose another OUT") from None
    _check_options(out_dir, options)
    records_path = out_dir / "corpus.jsonl"
    records = _read_records(records_path)
    _check_count(out_dir, options, records)
    babble_path = out_dir / "babble.wav"
    noise = _babble_file(babble_path, options)
    done = frozenset(records)
    missing = options.clips - len(done)
    # Drawn as the clips are made, so that memory does not grow with ``clips``.
    todo = (index for index in range(options.clips) if index not in done)
    landmarks = tuple(portrait_landmarks(variant) for variant in range(options.faces))
    arguments = (options, landmarks, noise if options.snr_db is not None else None, clips_dir)
    with records_path.open("a", encoding="utf-8") as log:
        for record in _made(todo, missing, arguments, workers):
            records[record["index"]] = record
            log.write(json.dumps(record) + "\n")
            log.flush()
            if on_clip:
                on_clip(record)
    write_text_atomic(records_path, "".join(json.dumps(records[index]) + "\n" for index in sorted(records)))
    return CorpusResult(made=missing, skipped=len(done), directory=out_dir)


def _made(indices: Iterator[int], count: int, arguments: tuple, workers: int) -> Iterator[dict]:
    """The records of the ``count`` clips ``indices`` names, in its order (a pool reads ahead only as far as its
    task pipe holds)."""
    if not count:
        return
    if workers <= 1:
        maker = _Maker(*arguments)
        yield from map(maker.make, indices)
        return
    # spawn, not fork: the parent may hold FaceMesh threads and libespeak-ng state.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_start_worker, initargs=arguments) as pool:
        yield from pool.imap(_make, indices, chunksize=4)


def _babble_file(path: Path, options: CorpusOptions) -> np.ndarray:
    if path.exists():
        from ..media.decode import load_audio

        return load_audio(path)
    noise = babble(Speaker(), np.random.default_rng([options.seed, 2]), options.babble_talkers, options.babble_seconds)
    pcm = np.clip(np.round(noise * 32767), -32768, 32767).astype("<i2")
    with atomic_path(path) as part, wave.open(str(part), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return pcm.astype(np.float32) / 32768.0
