"""``facelocal eval widerface`` with the reference's post-processing reproduces the reference predictions on the
val sample (Pytorch_Retinaface's test_widerface.py: original size, conf > 0.02, top 5000, NMS 0.4 with the +1 px
convention, keep 750, unclipped boxes, written as ``int(x1) int(y1) int(x2)-int(x1) int(y2)-int(y1) score``).

Boxes must match after integer truncation. Our decode runs in float32 on ONNX Runtime, the reference's in numpy,
so two things may differ, and nothing else: scores by at most 1e-5 (measured: 4.8e-6 over the 323 images), which
may swap the order of two faces whose scores tie to that precision; and a coordinate that lies within 1e-3 px of
an integer may truncate to the integer below (measured: one coordinate in the 323 images, 88.99999 for 89).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from facelocal.cli import main
from facelocal.evaluation.wider_txt import read_prediction
from tests.paths import shared_file

VAL_SAMPLE = shared_file("widerface", "val_sample", "FILES.txt").parent
REFERENCE = VAL_SAMPLE / "pred_mnet0.25_release"
GT_DIR = shared_file("widerface", "ground_truth", "wider_face_val.mat").parent
SCORE_TOLERANCE = 1e-5
ON_AN_INTEGER = 1e-3


def _truncated(faces: np.ndarray) -> np.ndarray:
    """``(N, 5)`` ``x y w h score`` floats to the reference's integer ``x y w h``: corners truncated first."""
    corners = np.trunc(np.column_stack([faces[:, :2], faces[:, :2] + faces[:, 2:4]]))
    return np.column_stack([corners[:, :2], corners[:, 2:] - corners[:, :2]]) + 0.0  # -0.0 reads as 0


def _compare(ours: np.ndarray, reference: np.ndarray) -> int:
    """Assert that ``ours`` (floats) reproduces ``reference`` (integer boxes) face for face: every row of ours
    pairs off with its own reference row, the same truncated box with the same score; the number of rows that
    pair off only because a coordinate of ours lies just under the reference's integer (float32 rounding)."""
    assert len(ours) == len(reference)
    np.testing.assert_allclose(ours[:, 4], reference[:, 4], atol=SCORE_TOLERANCE)  # the same order, by score
    boxes = _truncated(ours)
    by_box = defaultdict(list)
    for j, row in enumerate(reference):
        by_box[tuple(row[:4])].append(j)
    unpaired = []
    for i, box in enumerate(boxes):
        same = [j for j in by_box[tuple(box)] if abs(reference[j, 4] - ours[i, 4]) <= SCORE_TOLERANCE]
        if same:
            by_box[tuple(box)].remove(same[0])
        else:
            unpaired.append(i)
    left = sorted(j for rows in by_box.values() for j in rows)
    for i in unpaired:
        near = [
            j
            for j in left
            if abs(reference[j, 4] - ours[i, 4]) <= SCORE_TOLERANCE and _just_under(ours[i], reference[j])
        ]
        assert near, f"{boxes[i]} (score {ours[i, 4]}) is not in the reference"
        left.remove(near[0])
    return len(unpaired)


def _just_under(face: np.ndarray, reference: np.ndarray) -> bool:
    """Whether every corner coordinate of ``face`` (``x y w h score`` floats) that truncates otherwise than the
    reference's integer lies less than ``ON_AN_INTEGER`` under it."""
    corners = np.concatenate([face[:2], face[:2] + face[2:4]])
    expected = np.concatenate([reference[:2], reference[:2] + reference[2:4]])
    differ = np.trunc(corners) != expected
    return bool(((expected - corners)[differ] > 0).all() and ((expected - corners)[differ] < ON_AN_INTEGER).all())


def _reproduce(tmp_path, weights_path, *selection: str) -> tuple[int, int]:
    """Run the CLI with the reference post-processing; (images, boxes on an integer boundary)."""
    saved = tmp_path / "pred"
    code = main(
        [
            "eval",
            "widerface",
            "--images",
            str(VAL_SAMPLE / "images"),
            "--gt",
            str(GT_DIR),
            "--weights",
            str(weights_path),
            "--no-clip",
            "--plus-one",
            "--save-predictions",
            str(saved),
            *selection,
        ]
    )
    assert code == 0
    paths = sorted(saved.glob("*/*.txt"))
    boundary = sum(_compare(read_prediction(p), read_prediction(REFERENCE / p.parent.name / p.name)) for p in paths)
    return len(paths), boundary


def test_reference_post_processing_reproduces_the_reference_on_a_stride_of_the_sample(tmp_path, weights_path):
    images, boundary = _reproduce(tmp_path, weights_path, "--limit", "20", "--sample", "stride")
    assert (images, boundary) == (20, 0)


@pytest.mark.slow
def test_reference_post_processing_reproduces_the_reference_on_the_whole_sample(tmp_path, weights_path):
    images, boundary = _reproduce(tmp_path, weights_path)
    assert images == 323 and boundary <= 1


def test_comparison_tells_a_boundary_coordinate_from_a_wrong_box():
    reference = np.array([[48, 89, 174, 247, 0.24], [10, 10, 5, 5, 0.1]])
    on_boundary = np.array([[48.77, 88.99999, 173.8, 248.0, 0.24], [10.2, 10.5, 5.1, 5.1, 0.1]])
    assert _compare(on_boundary, reference) == 1
    assert _compare(np.array([[48.77, 89.2, 173.8, 247.5, 0.24], [10.2, 10.5, 5.1, 5.1, 0.1]]), reference) == 0
    wrong = (
        [[48.77, 88.5, 173.8, 248.5, 0.24], [10.2, 10.5, 5.1, 5.1, 0.1]],  # half a pixel off
        [[48.77, 89.0001, 173.8, 248.0, 0.24], [10.2, 10.5, 5.1, 5.1, 0.1]],  # y2 just over an integer
        [[10.2, 10.5, 5.1, 5.1, 0.24], [48.77, 89.2, 173.8, 247.5, 0.1]],  # the right boxes with each other's scores
    )
    for faces in wrong:
        with pytest.raises(AssertionError):
            _compare(np.array(faces), reference)
