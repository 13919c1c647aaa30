"""NMS against a brute-force reference, and IoU."""

from __future__ import annotations

import numpy as np
import pytest

from facelocal.postprocess import box_iou, nms


def brute_force_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """The textbook definition: walk by descending score, keep a box unless a kept one overlaps it too much."""
    keep: list[int] = []
    for i in sorted(range(len(scores)), key=lambda k: (-scores[k], k)):
        if all(box_iou(boxes[i : i + 1], boxes[j : j + 1])[0, 0] <= threshold for j in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms_matches_brute_force(seed, threshold):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 120))
    top_left = rng.uniform(0, 200, (n, 2))
    boxes = np.concatenate([top_left, top_left + rng.uniform(1, 80, (n, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    assert nms(boxes, scores, threshold).tolist() == brute_force_nms(boxes, scores, threshold)


def test_nms_empty_and_single():
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.4).tolist() == []
    assert nms(np.array([[0, 0, 1, 1]], np.float32), np.array([0.9], np.float32), 0.4).tolist() == [0]


def test_box_iou_known_values():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(box_iou(a, b)[0], [1.0, 50 / 150, 0.0, 0.0], rtol=1e-6)


def test_plus_one_nms_counts_a_box_as_one_pixel_wider_and_taller():
    # Two 10x10 boxes overlapping 5 px across: IoU 50/150 = 0.33 continuous, 6*11/(2*121 - 66) = 0.375 with +1.
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, scores, 0.35).tolist() == [0, 1]
    assert nms(boxes, scores, 0.35, plus_one=True).tolist() == [0]
