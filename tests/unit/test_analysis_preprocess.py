"""The pictures as the models take them, checked against arrays computed by hand; and the
BlazeFace arithmetic that needs no model (anchors, decoding, weighted suppression)."""

from __future__ import annotations

import numpy as np
import pytest

from orbitcast.analysis.blazeface import decode, ssd_anchors, weighted_nms
from orbitcast.analysis.expression import crop_square, face_input
from orbitcast.analysis.frames import check_frame, letterbox, to_gray
from orbitcast.analysis.results import Box


def _blocks() -> tuple[np.ndarray, np.ndarray]:
    """A 128 x 128 grey crop of 2 x 2 blocks whose four pixels are b, b+2, b+4, b+6 (mean b+3),
    and the 64 x 64 array of those means mapped to [-1, 1] by hand: (b + 3) / 127.5 - 1."""
    crop = np.zeros((128, 128), np.uint8)
    expected = np.zeros((64, 64), np.float32)
    for i in range(64):
        for j in range(64):
            b = 3 * ((i + 2 * j) % 80)  # 0 .. 237
            crop[2 * i, 2 * j], crop[2 * i, 2 * j + 1] = b, b + 2
            crop[2 * i + 1, 2 * j], crop[2 * i + 1, 2 * j + 1] = b + 4, b + 6
            expected[i, j] = (b + 3) / 127.5 - 1
    return crop, expected


def test_a_128_pixel_face_becomes_64x64_means_of_2x2_blocks_in_minus_one_to_one() -> None:
    crop, expected = _blocks()
    frame = np.full((240, 320), 255, np.uint8)  # white around it: any leak shows
    frame[30:158, 40:168] = crop
    got = face_input(frame, Box(40, 30, 128, 128), margin=0.0)
    assert got.shape == (64, 64) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_a_64_pixel_face_is_taken_as_it_is() -> None:
    frame = np.zeros((100, 100), np.uint8)
    frame[10:74, 20:84] = np.arange(64 * 64).reshape(64, 64) % 256
    got = face_input(frame, Box(20, 10, 64, 64), margin=0.0)
    expected = (np.arange(64 * 64).reshape(64, 64) % 256) / 127.5 - 1
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got.min() == -1.0 and got.max() == 1.0  # 0 and 255 are the ends of the range


def test_the_crop_is_a_square_on_the_face_centre_with_the_margin_on_each_side() -> None:
    assert crop_square(Box(100, 100, 100, 100), margin=0.1) == (90, 90, 120)
    assert crop_square(Box(100, 100, 80, 100), margin=0.1) == (80, 90, 120)  # the longer side rules
    assert crop_square(Box(10, 20, 64, 64), margin=0.0) == (10, 20, 64)


def test_a_crop_past_the_edge_repeats_the_edge_pixels() -> None:
    frame = (np.arange(32 * 32).reshape(32, 32) % 200).astype(np.uint8)
    got = face_input(frame, Box(0, 0, 32, 32), margin=0.5)  # a 64-pixel square from -16 to 48
    expected = np.pad(frame, 16, mode="edge") / 127.5 - 1
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_rgb_faces_are_made_grey_with_bt601_weights() -> None:
    colours = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0], [10, 200, 90]]], np.uint8)
    grey = to_gray(colours)
    by_hand = [0.299 * 255, 0.587 * 255, 0.114 * 255, 255, 0, 0.299 * 10 + 0.587 * 200 + 0.114 * 90]
    np.testing.assert_allclose(grey[0].astype(float), by_hand, atol=1.0)
    # an RGB face and its grey picture give the classifier the same input
    rgb = np.stack([np.full((64, 64), 90, np.uint8), np.full((64, 64), 150, np.uint8), np.full((64, 64), 30, np.uint8)], axis=2)
    np.testing.assert_array_equal(face_input(rgb, Box(0, 0, 64, 64), margin=0.0),
                                  face_input(to_gray(rgb), Box(0, 0, 64, 64), margin=0.0))


def test_a_box_outside_the_picture_and_bad_pictures_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        face_input(np.zeros((50, 50), np.uint8), Box(100, 100, 20, 20), margin=0.0)
    with pytest.raises(ValueError, match="uint8"):
        check_frame(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        check_frame(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(ValueError, match="numpy"):
        check_frame([[0]])  # type: ignore[arg-type]


def test_letterbox_keeps_the_aspect_and_fills_the_rest_with_black() -> None:
    frame = np.full((90, 160, 3), 255, np.uint8)
    tensor, scale, left, top = letterbox(frame, 128)
    assert tensor.shape == (128, 128, 3)
    assert scale == 128 / 160 and left == 0 and top == (128 - 72) // 2
    assert np.all(tensor[top:top + 72] == 1.0)  # white -> 1
    assert np.all(tensor[:top] == -1.0) and np.all(tensor[top + 72:] == -1.0)  # black bars -> -1


def test_anchor_grids_match_the_models_outputs() -> None:
    short = ssd_anchors(128, (8, 16, 16, 16), 2)
    full = ssd_anchors(192, (4,), 1)
    assert short.shape == (896, 2) and full.shape == (2304, 2)  # the models' regressor rows
    # first layer: 16 x 16 cells, two anchors each, row by row from the top left
    np.testing.assert_allclose(short[:4], [[0.5 / 16, 0.5 / 16]] * 2 + [[1.5 / 16, 0.5 / 16]] * 2)
    # the 16-pixel layers share one 8 x 8 grid with 6 anchors per cell
    np.testing.assert_allclose(short[512:518], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(full[-1], [47.5 / 48, 47.5 / 48])


def test_decode_turns_offsets_from_anchor_centres_into_boxes() -> None:
    anchors = np.array([[0.5, 0.5], [0.25, 0.25]], np.float32)
    raw = np.zeros((1, 2, 16), np.float32)
    raw[0, 0, :4] = [12.8, -6.4, 64, 32]  # 128-pixel input: +0.1, -0.05, w 0.5, h 0.25
    raw[0, 1, :4] = [0, 0, 10, 10]
    scores = np.array([[[3.0], [-3.0]]], np.float32)  # sigmoid: 0.953, 0.047
    boxes, kept = decode(raw, scores, anchors, 128, min_score=0.5)
    np.testing.assert_allclose(boxes, [[0.35, 0.325, 0.85, 0.575]], atol=1e-6)
    np.testing.assert_allclose(kept, [1 / (1 + np.exp(-3.0))], rtol=1e-6)


def test_weighted_suppression_merges_overlapping_boxes_by_score() -> None:
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.1, 0.0, 1.1, 1.0], [5.0, 5.0, 6.0, 6.0]], np.float32)
    scores = np.array([0.9, 0.6, 0.7], np.float32)
    out = weighted_nms(boxes, scores)
    assert len(out) == 2
    (merged, s1), (alone, s2) = out
    np.testing.assert_allclose(merged, [0.6 * 0.1 / 1.5, 0, (0.9 * 1.0 + 0.6 * 1.1) / 1.5, 1.0], atol=1e-6)
    assert s1 == pytest.approx(0.9) and s2 == pytest.approx(0.7)
    np.testing.assert_allclose(alone, [5, 5, 6, 6])
    assert weighted_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)) == []
