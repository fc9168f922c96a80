"""The mouth-ROI geometry (auto_avsr's), pinned with landmarks whose answer is known, and the landmark backends."""

import math

import numpy as np
import pytest

from omniavsr_cli.lips import roi
from omniavsr_cli.lips.face_select import TRACK_PATIENCE, FaceSelector
from omniavsr_cli.lips.landmarks import FACEMESH_TO_IBUG68, Face, box_of

# Figures of auto_avsr's mean face (reference table): the mouth centre and a few points.
MOUTH_CENTRE = (129.3133732259, 157.8229963492)


def similarity(scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    angle = math.radians(degrees)
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return np.hstack([rotation, np.array(shift)[:, None]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_the_packaged_mean_face_is_auto_avsrs():
    face = roi.mean_face()
    assert face.shape == (68, 2) and face.dtype == np.float64
    assert tuple(face[48:68].mean(axis=0)) == pytest.approx(MOUTH_CENTRE, abs=1e-9)
    assert tuple(face[28]) == pytest.approx((128.4885447327, 106.9245950561), abs=1e-9)
    assert tuple(face[54]) == pytest.approx((152.1928400538, 156.9871111621), abs=1e-9)


def test_a_face_that_is_a_moved_mean_face_is_warped_exactly_back():
    """Landmarks = mean face under a known similarity: the fit must be its inverse and the window the mouth's."""
    face = roi.mean_face()
    placed = similarity(0.8, 12.0, (40.0, -25.0))
    points = apply(placed, face)
    geometry = roi.frame_geometry(np.stack([points] * 3), 1, face)
    inverse = np.linalg.inv(np.vstack([placed, [0, 0, 1]]))[:2]
    # OpenCV's LMedS fit stops its refinement at ~1e-5 px: exact to far below a pixel.
    np.testing.assert_allclose(geometry.matrix, inverse, atol=1e-4)
    assert geometry.window.centre == pytest.approx(MOUTH_CENTRE, abs=1e-4)
    assert (geometry.window.left, geometry.window.top) == (round(MOUTH_CENTRE[0]) - 48, round(MOUTH_CENTRE[1]) - 48)
    assert not geometry.window.clamped


def test_the_crop_is_the_96px_window_of_the_frame_warped_into_the_reference():
    """A frame made by placing a reference-frame pattern through a known similarity crops back to that pattern."""
    import cv2

    rng = np.random.default_rng(0)
    pattern = cv2.GaussianBlur(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), (0, 0), 3)
    placed = similarity(1.3, -8.0, (30.0, 20.0))
    frame = cv2.warpAffine(pattern, placed, (420, 400), flags=cv2.INTER_LINEAR)
    points = apply(placed, roi.mean_face())
    [crop] = roi.mouth_rois([frame], [points])
    left, top = round(MOUTH_CENTRE[0]) - 48, round(MOUTH_CENTRE[1]) - 48
    expected = pattern[top : top + 96, left : left + 96].astype(int)
    assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8
    assert np.abs(crop.astype(int) - expected).mean() < 2.0  # two bilinear resamplings of a smooth pattern


def test_gaps_are_filled_linearly_and_the_ends_copy_the_nearest_detection():
    a, b = np.zeros((68, 2)), np.full((68, 2), 10.0)
    filled = roi.fill_gaps([None, a, None, None, None, b, None])
    np.testing.assert_array_equal(filled[0], a)
    np.testing.assert_allclose(filled[2:5, 0, 0], [2.5, 5.0, 7.5])
    np.testing.assert_array_equal(filled[6], b)
    with pytest.raises(ValueError):
        roi.fill_gaps([None, None])


def test_smoothing_window_is_centred_shrinks_at_the_ends_and_keeps_the_frame_position():
    base = roi.mean_face()
    points = np.stack([base * (1 + 0.01 * k) + k for k in range(20)])
    # Frame 10 uses frames 4..16, frame 2 uses 0..4, the last frame only itself.
    for index, span in ((10, range(4, 17)), (2, range(0, 5)), (19, range(19, 20))):
        shape = roi.smoothed_shape(points, index)
        mean = points[list(span)].mean(axis=0)
        np.testing.assert_allclose(shape, mean + points[index].mean(axis=0) - mean.mean(axis=0), atol=1e-9)


def test_a_mouth_far_off_centre_moves_the_window_back_and_is_counted():
    face = roi.mean_face().copy()
    face[48:68, 1] += 40  # a mouth far below where the mean face has it
    geometry = roi.frame_geometry(np.stack([face]), 0, roi.mean_face())
    assert geometry.window.clamped
    assert geometry.window.top + 48 == 128 + roi.MAX_CENTRE_OFFSET


def moving_clip(frames: int, missing: set[int]):
    rng = np.random.default_rng(1)
    video = rng.integers(0, 256, (frames, 120, 110, 3), dtype=np.uint8)
    points = [
        None if k in missing else apply(similarity(0.35 + 0.002 * k, 3 * math.sin(k / 4), (10 + k * 0.3, 5.0)), roi.mean_face())
        for k in range(frames)
    ]
    return video, points


@pytest.mark.parametrize("missing", [set(), {0, 1, 2, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 38, 39}])
def test_streaming_crops_equal_whole_clip_crops_bit_for_bit(missing):
    video, points = moving_clip(40, missing)
    expected = roi.mouth_rois(video, points)
    cropper = roi.StreamingCropper()
    crops = [crop for frame, p in zip(video, points) for _, crop, _ in cropper.push(frame, p)]
    assert len(crops) < len(video)  # some frames wait for later landmarks
    crops += [crop for _, crop, _ in cropper.finish()]
    assert not cropper.overflowed
    np.testing.assert_array_equal(np.stack(crops), np.stack(expected))


def test_a_long_faceless_stretch_overflows_the_buffer_and_a_second_pass_gives_the_same_crops():
    video, points = moving_clip(40, set(range(5, 30)))
    expected = roi.mouth_rois(video, points)
    cropper = roi.StreamingCropper(max_buffered_bytes=10 * video[0].nbytes)
    crops = [crop for frame, p in zip(video, points) for _, crop, _ in cropper.push(frame, p)]
    crops += [crop for _, crop, _ in cropper.finish()]
    assert cropper.overflowed
    crops += [cropper.crop(k, video[k])[1] for k in range(cropper.next_index, len(video))]
    np.testing.assert_array_equal(np.stack(crops), np.stack(expected))


def test_same_landmarks_give_bit_identical_crops():
    video, points = moving_clip(15, {4, 5})
    np.testing.assert_array_equal(np.stack(roi.mouth_rois(video, points)), np.stack(roi.mouth_rois(video.copy(), list(points))))


def test_facemesh_map_is_one_vertex_per_ibug_point_and_the_lips_are_facemesh_lips():
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_LIPS

    lips = {vertex for edge in FACEMESH_LIPS for vertex in edge}
    assert len(FACEMESH_TO_IBUG68) == 68 and len(set(FACEMESH_TO_IBUG68.tolist())) == 68
    assert set(FACEMESH_TO_IBUG68[48:68].tolist()) <= lips
    # auto_avsr's stable points map to the vertices the reference names.
    assert [int(FACEMESH_TO_IBUG68[i]) for i in roi.STABLE_POINTS] == [197, 2, 33, 133, 362, 263, 61, 291]


def face_at(x: float, y: float, size: float) -> Face:
    points = apply(similarity(size / 130, 0, (x - 130 * size / 130, y - 130 * size / 130)), roi.mean_face())
    return Face(points, math.nan, box_of(points))


def test_face_selection_rules():
    small_centre, big_corner = face_at(160, 120, 60), face_at(60, 60, 120)
    assert FaceSelector("largest", (320, 240)).choose([small_centre, big_corner]) is big_corner
    assert FaceSelector("center", (320, 240)).choose([small_centre, big_corner]) is small_centre
    assert FaceSelector("largest", (320, 240)).choose([]) is None


def test_tracking_follows_one_person_even_when_another_becomes_larger():
    selector = FaceSelector("track", (640, 480))
    followed = [face_at(150 + k, 200, 100) for k in range(5)]
    other = [face_at(450, 200, 90 + 10 * k) for k in range(5)]
    assert selector.choose([followed[0], other[0]]) is followed[0]  # starts with the largest
    for k in range(1, 5):
        assert selector.choose([other[k], followed[k]]) is followed[k]  # the other grows larger; ignored
    assert selector.choose([other[4]]) is None  # the followed person left: a gap, not a jump
    for _ in range(TRACK_PATIENCE):
        selector.choose([])
    assert selector.choose([other[4]]) is other[4]  # gone too long: take whoever is there
