"""Speaker selection (lips/speakers.py): labels from mouth-audio synchrony, the speaker's crops, off-screen speech."""

from __future__ import annotations

import numpy as np
import pytest

from omniavsr_cli.errors import UsageError
from omniavsr_cli.lips import speakers
from omniavsr_cli.lips.landmarks import Face, box_of
from omniavsr_cli.lips.roi import mean_face
from omniavsr_cli.lips.speakers import OFF_SCREEN, UNDECIDED, SpeakerCrops, main_label, mostly_off_screen, speaker_labels
from omniavsr_cli.lips.synchrony import ENVELOPE_FLOOR, EnvelopeStream, audio_envelope
from omniavsr_cli.lips.tracking import RULES, MouthTrack

RNG = np.random.default_rng(5)


def syllables(frames: int, seed: int) -> np.ndarray:
    """A speech-like envelope: bursts of 3-8 frames with pauses, as syllables come."""
    rng = np.random.default_rng(seed)
    curve = np.zeros(frames)
    frame = 0
    while frame < frames:
        length = int(rng.integers(3, 9))
        curve[frame : frame + length] = rng.uniform(0.3, 1.0) * np.hanning(length + 2)[1:-1][: frames - frame]
        frame += length + int(rng.integers(1, 5))
    return curve + 0.01


def test_the_mouth_that_follows_the_audio_is_the_speaker_and_turns_are_found():
    frames = 300
    first, second = syllables(frames, 1), syllables(frames, 2)
    envelope = np.concatenate([first[:150], second[150:]])  # track 0 speaks, then track 1
    openings = {0: np.roll(first, 2) * 0.4, 1: np.roll(second, 1) * 0.4}  # mouths a little after the sound
    labels = speaker_labels(openings, envelope)
    assert len(labels) == frames
    assert (labels[:120] == 0).all() and (labels[180:] == 1).all()
    change = np.flatnonzero(np.diff(labels))
    # a 2-s window straddling the change sees both: the change is placed within half a window of it
    assert len(change) == 1 and abs(change[0] - 150) <= speakers.WINDOW_FRAMES // 2


def test_speech_no_visible_mouth_follows_is_off_screen():
    frames = 200
    envelope = syllables(frames, 3)
    openings = {0: syllables(frames, 4), 1: syllables(frames, 5)}  # both mouths talk, neither says what is heard
    assert (speaker_labels(openings, envelope) == OFF_SCREEN).all()
    assert mostly_off_screen(speaker_labels(openings, envelope))


def test_silence_and_missing_mouths_are_undecided_and_take_the_nearest_decision():
    frames = 200
    envelope = syllables(frames, 6)
    envelope[100:] = ENVELOPE_FLOOR  # silence: no evidence
    openings = {0: np.roll(envelope, 1), 1: syllables(frames, 7)}
    assert (speaker_labels(openings, envelope) == 0).all()
    assert main_label(np.array([UNDECIDED, 2, 2, OFF_SCREEN])) == 2
    assert main_label(np.array([UNDECIDED, UNDECIDED])) == UNDECIDED
    assert not mostly_off_screen(np.array([UNDECIDED] * 5))
    assert speakers.speaker_name(0) == "face 1" and speakers.speaker_name(OFF_SCREEN) == "off-screen"


def test_the_envelope_of_blocks_of_any_length_is_the_envelope_of_the_whole():
    audio = RNG.normal(size=16_000 * 3 + 123).astype(np.float32)
    stream = EnvelopeStream()
    for start, stop in ((0, 1000), (1000, 1001), (1001, 30_000), (30_000, len(audio))):
        stream.feed(audio[start:stop])
    np.testing.assert_allclose(stream.envelope(), audio_envelope(audio), rtol=1e-6)


def _face(centre_x: float, opening: float) -> Face:
    """The mean face, 100 px wide, centred at x, its inner lips ``opening`` px apart."""
    points = (mean_face() - mean_face().mean(axis=0)) * 0.8 + [centre_x, 112]
    points[[65, 66, 67], 1] += opening  # the lower inner lip drops
    return Face(points, 1.0, box_of(points))


def _frames(count: int) -> np.ndarray:
    """Left half red, right half blue: a crop's colour says whose face it is."""
    frames = np.zeros((count, 224, 448, 3), np.uint8)
    frames[:, :, :224, 0] = 200
    frames[:, :, 224:, 2] = 200
    return frames


@pytest.mark.parametrize("always", [False, True])
def test_each_frame_shows_the_speaker_s_mouth_and_is_labelled_with_its_track(always):
    frames = 200
    left, right = syllables(frames, 8), syllables(frames, 9)
    envelope = np.concatenate([left[:100], right[100:]])
    crops = SpeakerCrops(lambda: envelope, [(0, 100), (100, 200)], always=always)
    video = _frames(frames)
    shown = []
    for index in range(frames):
        crops.push(index, video[index], [_face(112, 8 * left[index]), _face(336, 8 * right[index])])
        while len(shown) < frames and crops.ready(len(shown)):
            shown.append(crops.crop(len(shown), np.zeros((96, 96, 3), np.uint8)))
    crops.finish()
    while len(shown) < frames:
        assert crops.ready(len(shown))
        shown.append(crops.crop(len(shown), np.zeros((96, 96, 3), np.uint8)))
    colour = np.array([crop.reshape(-1, 3).mean(axis=0) for crop in shown])
    assert (colour[:100, 0] > colour[:100, 2]).all(), "the first block shows the left (red) face"
    assert (colour[100:, 2] > colour[100:, 0]).all(), "the second the right (blue) face"
    assert [crops.labels[k] for k in (0, 99, 100, 199)] == [0, 0, 1, 1]
    box = np.nanmedian(crops.box_rows(1, 100, 200), axis=0)
    assert 224 < box[0] < box[2] < 448


def test_one_face_in_auto_is_the_speaker_without_judging_it_and_is_cropped_as_before():
    """Also when the detector finds it twice in some frames (a second mesh inside the first)."""
    frames = 60
    opening = syllables(frames, 10)
    crops = SpeakerCrops(lambda: pytest.fail("auto with one face must not need the audio"), None, always=False)
    for index in range(frames):
        face = _face(112, 8 * opening[index])
        found_twice = Face(112 + (face.points - 112) * 0.7, 1.0, box_of(112 + (face.points - 112) * 0.7))  # a mesh inside it
        crops.push(index, _frames(1)[0], [face, found_twice] if index % 2 else [face])
    crops.finish()
    assert not crops.croppers, "no second face: no crops of its own, the one-face cropper's are used"
    assert set(crops.labels.values()) == {0}
    fallback = np.full((96, 96, 3), 7, np.uint8)
    assert all(crops.ready(k) and crops.crop(k, fallback) is fallback for k in range(frames))


def test_an_unknown_face_selection_rule_is_a_usage_error_naming_the_choices(tmp_path):
    from omniavsr_cli.lips.prep import PrepOptions
    from omniavsr_cli.transcribe import TranscribeOptions

    for make in (lambda: MouthTrack(tmp_path / "x.mp4", None, "mediapipe", "loudest"), lambda: PrepOptions(face_select="loudest")):
        with pytest.raises(UsageError, match="^face_select 'loudest': choose one of " + ", ".join(RULES)):
            make()
    with pytest.raises(UsageError, match="^face_select 'loudest'"):
        TranscribeOptions(face_select="loudest")


def test_the_speaker_is_found_among_mouths_that_share_the_speech_pause_rhythm():
    frames = 200
    talking = np.zeros(frames)
    talking[10:80] = talking[110:180] = 1  # two sentences with a pause: every mouth below starts and stops with them
    envelope = syllables(frames, 8) * talking + 0.01
    mouthing = {track: syllables(frames, seed) * talking for track, seed in ((0, 9), (1, 10))}
    speaking = {**mouthing, 1: np.roll(envelope, speakers.SYNC_LAG_FRAMES)}  # the speaker, as late as the search reaches
    assert (speaker_labels(speaking, envelope) == 1).all()


def test_each_turn_is_judged_on_its_own_so_off_screen_speech_and_a_speaker_share_a_span():
    frames = 300
    heard_off, heard_on, other = syllables(frames, 11), syllables(frames, 12), syllables(frames, 13)
    envelope = np.concatenate([heard_off[:150], heard_on[150:]])  # a narrator, then the left face speaks
    openings = {0: np.concatenate([syllables(frames, 14)[:150], np.roll(heard_on, 1)[150:]]), 1: other}
    labels = speaker_labels(openings, envelope)
    assert (labels[: 150 - speakers.WINDOW_FRAMES // 2] == OFF_SCREEN).all()
    assert (labels[150 + speakers.WINDOW_FRAMES // 2 :] == 0).all()


def test_lip_reading_alone_still_hears_who_speaks(tiny_model, tmp_path):
    from faces import face_frames, speech_like, write_media

    from omniavsr_cli import load_model
    from omniavsr_cli.decoding import DecodingOptions

    write_media(tmp_path / "face.mp4", face_frames(75, 128), speech_like([(0.3, 1.2), (1.6, 2.7)], 3.0))
    model = load_model(tiny_model)
    fast = {"decoding": DecodingOptions(num_beams=1), "guards": False}
    segments, _ = model.transcribe(tmp_path / "face.mp4", mode="vsr", **fast)
    segments = list(segments)
    assert segments and all(s.speaker == "face 1" and s.face_box is not None for s in segments), "the audio is decoded to find the speaker"
    segments, _ = model.transcribe(tmp_path / "face.mp4", mode="vsr", face_select="largest", **fast)
    assert all(s.speaker is None for s in segments), "a rule that does not listen names no speaker"


def test_sound_muxed_early_is_found_and_later_blocks_are_judged_at_that_offset():
    frames, early = 400, 5  # 200 ms: beyond the lags each window searches
    envelope = syllables(frames, 21)
    left, right = np.roll(envelope, early), syllables(frames, 22)  # the left face says what is heard, 5 frames after the sound
    crops = SpeakerCrops(lambda: envelope, [(k, k + 100) for k in range(0, frames, 100)], always=True)
    for index in range(frames):
        crops.push(index, _frames(1)[0], [_face(112, 8 * left[index]), _face(336, 8 * right[index])])
    crops.finish()
    assert crops.offset == early
    assert all(crops.labels[k] == 0 for k in range(200, frames)), "once two blocks agree, the speaker is found"
    assert speakers._delayed(np.arange(5.0), 2).tolist() == [ENVELOPE_FLOOR, ENVELOPE_FLOOR, 0, 1, 2]
    assert speakers._delayed(np.arange(5.0), -2).tolist() == [2, 3, 4, ENVELOPE_FLOOR, ENVELOPE_FLOOR]


def test_a_mouth_saying_other_words_sets_no_offset():
    frames = 400
    envelope = syllables(frames, 23)
    crops = SpeakerCrops(lambda: envelope, [(k, k + 100) for k in range(0, frames, 100)], always=True)
    others = syllables(frames, 24), syllables(frames, 25)
    for index in range(frames):
        crops.push(index, _frames(1)[0], [_face(112, 8 * others[0][index]), _face(336, 8 * others[1][index])])
    crops.finish()
    assert crops.offset == 0 and set(crops.labels.values()) == {OFF_SCREEN}


def test_lip_reading_does_not_fail_on_audio_that_breaks_off(tiny_model, tmp_path):
    from faces import face_frames, speech_like, write_media

    from omniavsr_cli import load_model
    from omniavsr_cli.decoding import DecodingOptions

    # 3 s of video, 1 s of sound: decoding the audio is an error, but lip reading only hears it to find the speaker
    write_media(tmp_path / "short-sound.mp4", face_frames(75, 128), speech_like([(0.2, 0.8)], 1.0))
    segments, _ = load_model(tiny_model).transcribe(
        tmp_path / "short-sound.mp4", mode="vsr", decoding=DecodingOptions(num_beams=1), guards=False
    )
    assert list(segments), "the lips are read as they were before the audio was decoded for the speaker"


def test_a_lone_face_is_tracked_alone_with_the_landmarks_of_the_four_face_mesh_and_a_second_face_is_found_by_the_scan():
    from faces import face_frames
    from mediapipe.python.solutions import face_mesh

    from omniavsr_cli.lips.landmarks import MediaPipeFaceMesh

    lone = face_frames(30, 224)
    with MediaPipeFaceMesh() as detector:
        found = [detector.detect(frame, index) for index, frame in enumerate(lone)]
        assert detector._several is None, "one face in view: the one-face mesh alone (no detector run on every frame)"
    with MediaPipeFaceMesh() as four_face:  # as before: the four-face mesh on every frame
        four_face._lone.close()
        four_face._lone = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=4, refine_landmarks=False)
        before = [four_face.detect(frame, index) for index, frame in enumerate(lone)]
    assert [len(faces) for faces in found] == [len(faces) for faces in before] == [1] * 30
    assert all(np.array_equal(a[0].points, b[0].points) for a, b in zip(found, before))
    # A second face comes into view at frame 12: the next scan (frame 15) finds it, and both are tracked from there.
    blank = np.full_like(lone, 128)
    frames = np.concatenate([lone, np.where(np.arange(30)[:, None, None, None] >= 12, lone[:, :, ::-1], blank)], axis=2)
    with MediaPipeFaceMesh() as detector:
        counts = [len(detector.detect(frame, index)) for index, frame in enumerate(frames)]
    assert counts[:12] == [1] * 12 and counts[15:] == [2] * 15
