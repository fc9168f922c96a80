"""FaceTracker: stable ids across frames, short gaps bridged, long absences and cuts start new tracks."""

from __future__ import annotations

import numpy as np
import pytest

from omniavsr_cli.lips.face_tracks import MAX_GAP_FRAMES, FaceTracker, distinct_faces
from omniavsr_cli.lips.landmarks import Face, box_of


def face_at(x: float, y: float, size: float = 80.0, score: float = 0.9) -> Face:
    """A face whose 68 points fill a size x size box centred on (x, y); point k is offset by k / 100 px so
    the landmarks of each frame can be recognised in the track."""
    rng = np.random.default_rng(0)
    points = np.array([x, y]) + (rng.uniform(-0.5, 0.5, (68, 2)) * size)
    points[[0, 1]] = [[x - size / 2, y - size / 2], [x + size / 2, y + size / 2]]
    return Face(points=points, score=score, box=box_of(points))


def run(frames: list[list[Face]]) -> tuple[list[list[int]], FaceTracker]:
    tracker = FaceTracker()
    return [tracker.update(index, faces) for index, faces in enumerate(frames)], tracker


def test_two_faces_passing_each_other_keep_their_ids():
    # A walks right, B walks left, one 30 px lower: their boxes overlap for several frames mid-way.
    frames = [[face_at(60 + 4 * k, 100), face_at(260 - 4 * k, 130)] for k in range(50)]
    ids, tracker = run(frames)
    assert all(pair == ids[0] for pair in ids)
    assert ids[0][0] != ids[0][1]
    tracks = tracker.tracks()
    assert len(tracks) == 2
    walker_a = tracks[ids[0][0]]
    assert walker_a.detected.all() and len(walker_a.frames) == 50
    # its boxes move right: the last one is A's final box, not B's
    assert walker_a.boxes[-1] == pytest.approx(frames[-1][0].box)
    np.testing.assert_array_equal(walker_a.points[17], frames[17][0].points)


def test_ids_do_not_depend_on_the_detector_order():
    frames = [[face_at(60, 100), face_at(200, 100)][:: 1 if k % 2 else -1] for k in range(10)]
    ids, _ = run(frames)
    left_ids = {frame_ids[0 if k % 2 else 1] for k, frame_ids in enumerate(ids)}
    assert len(left_ids) == 1


def test_a_face_gone_for_ten_frames_keeps_its_id_and_the_gap_is_nan():
    frames = [[face_at(100 + k, 100)] if not 20 <= k < 30 else [] for k in range(50)]
    ids, tracker = run(frames)
    assert {i for frame_ids in ids for i in frame_ids} == {0}
    (track,) = tracker.tracks()
    assert (track.first_frame, track.last_frame) == (0, 49)
    assert not track.detected[20:30].any() and track.detected[:20].all() and track.detected[30:].all()
    assert np.isnan(track.points[20:30]).all() and np.isnan(track.boxes[25]).all() and np.isnan(track.scores[25])
    assert not np.isnan(track.points[30]).any()


def test_a_face_gone_for_three_seconds_returns_as_a_new_track():
    frames = [[face_at(100, 100)] if not 20 <= k < 95 else [] for k in range(120)]
    ids, tracker = run(frames)
    assert ids[19] == [0] and ids[95] == [1]
    first, second = tracker.tracks()
    assert (first.first_frame, first.last_frame) == (0, 19)
    assert (second.first_frame, second.last_frame) == (95, 119)


def test_the_gap_limit_is_inclusive():
    gone = MAX_GAP_FRAMES
    frames = [[face_at(100, 100)]] + [[]] * gone + [[face_at(100, 100)]] + [[]] * (gone + 1) + [[face_at(100, 100)]]
    ids, _ = run(frames)
    assert ids[gone + 1] == [0]
    assert ids[-1] == [1]


def test_detection_flicker_stays_one_track_and_a_one_frame_false_face_is_its_own():
    frames = []
    for k in range(40):
        faces = [face_at(120 + k, 110)] if k % 3 else []  # missed every third frame
        if k == 13:
            faces.append(face_at(400, 300, size=40, score=0.3))  # a spurious detection elsewhere
        frames.append(faces)
    ids, tracker = run(frames)
    assert {frame_ids[0] for frame_ids in ids if frame_ids} == {0}
    assert ids[13] == [0, 1]
    person, spurious = tracker.tracks()
    assert person.detections == 26 and (person.first_frame, person.last_frame) == (1, 38)
    assert spurious.detections == 1 and spurious.scores[0] == pytest.approx(0.3)


def test_a_jump_across_the_frame_is_another_face():
    frames = [[face_at(80, 100)]] * 5 + [[face_at(300, 100)]] * 5
    ids, _ = run(frames)
    assert ids[4] == [0] and ids[5] == [1]


def test_a_face_of_very_different_size_is_another_face():
    frames = [[face_at(100, 100, size=100)]] * 5 + [[face_at(100, 100, size=40)]] * 5
    ids, _ = run(frames)
    assert ids[5] == [1]


def test_frames_must_increase():
    tracker = FaceTracker()
    tracker.update(3, [])
    with pytest.raises(ValueError, match="increasing"):
        tracker.update(3, [])


def test_a_face_found_twice_counts_once_and_neighbours_stay_apart():
    """FaceMesh sometimes returns a second, shrunken mesh inside a face (seen on rotated video): one face, one track."""
    big, inside = face_at(110, 115, 110), face_at(105, 96, 75)
    assert [face.box for face in distinct_faces([inside, big])] == [big.box]
    left, right, overlapping = face_at(60, 100), face_at(180, 100), face_at(110, 100, 60)  # half of it over `left`
    assert [face.box for face in distinct_faces([left, right, overlapping])] == [left.box, right.box, overlapping.box]
