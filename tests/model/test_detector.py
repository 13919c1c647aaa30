"""Batched inference: resize policies, letterboxing, mixed sizes and degenerate images."""

from __future__ import annotations

import numpy as np
import pytest

from facelocal.config import EVAL_POSTPROCESS
from facelocal.detector import Detector
from facelocal.postprocess import box_iou
from facelocal.preprocess import ResizePolicy


@pytest.fixture(scope="module")
def detector(weights_path):
    return Detector.from_weights(weights_path)


def _matched(a, b, min_iou):
    iou = box_iou(a.boxes, b.boxes)
    return iou.shape[1] > 0 and bool(np.all(iou.max(axis=1) >= min_iou))


def test_letterbox_without_scaling_finds_the_same_faces(weights_path, photos):
    original = Detector.from_weights(weights_path)
    boxed = Detector.from_weights(weights_path, resize=ResizePolicy("letterbox", 1280))
    for name, image in photos.items():
        a = original.detect([image])[0]
        b = boxed.detect([image])[0]
        a, b = a.select(a.scores >= 0.6), b.select(b.scores >= 0.6)
        assert len(a) == len(b) > 0, name
        assert _matched(a, b, 0.9) and _matched(b, a, 0.9)


def test_long_side_resize_maps_back_to_original_pixels(weights_path, photos):
    image = photos["selfie_group.jpg"]  # 1024x624
    full = Detector.from_weights(weights_path).detect([image])[0]
    scaled = Detector.from_weights(weights_path, resize=ResizePolicy("long", 768)).detect([image])[0]
    assert (scaled.width, scaled.height) == (1024, 624)
    big = full.select((full.boxes[:, 2] - full.boxes[:, 0]) >= 40)
    # a 0.75x input changes what the network sees, so allow a face or two to move; offsets would move them all
    assert (box_iou(big.boxes, scaled.boxes).max(axis=1) >= 0.7).mean() >= 0.9


def test_mixed_sizes_in_one_call_equal_single_calls(detector, photos):
    images = [
        photos["wider_train_band_crowd.jpg"],
        photos["selfie_group.jpg"],
        photos["wider_train_band_crowd.jpg"][:300, :500],
    ]
    together = detector.detect(images)
    for image, result in zip(images, together, strict=True):
        alone = detector.detect([image])[0]
        assert (result.width, result.height) == (image.shape[1], image.shape[0])
        np.testing.assert_allclose(result.boxes, alone.boxes, atol=1e-3)
        np.testing.assert_allclose(result.scores, alone.scores, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (13, 7), (2, 300)])
def test_tiny_and_thin_images(weights_path, shape):
    detector = Detector.from_weights(weights_path, postprocess=EVAL_POSTPROCESS)
    image = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    result = detector.detect([image])[0]
    assert (result.height, result.width) == shape
    assert result.boxes.shape[1:] == (4,) and result.landmarks.shape[1:] == (5, 2)
    assert np.all(result.boxes[:, 0::2] <= shape[1]) and np.all(result.boxes[:, 1::2] <= shape[0])


def test_result_types_and_order(detector, photos):
    result = detector.detect([photos["wider_train_band_crowd.jpg"]])[0]
    assert result.boxes.dtype == np.float32 and result.landmarks.shape == (len(result), 5, 2)
    assert np.all(np.diff(result.scores) <= 0)
    assert result.scores.min() > 0.5
