"""``facelocal eval anonymize`` and ``facelocal eval quality`` on a few WIDER val images, and the coverage
counting on a synthetic mask."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facelocal.anonymize import ANONYMIZE_SCORE_THRESHOLD, ANONYMIZE_TTA
from facelocal.evaluation.coverage import CoverageTally, box_coverage
from facelocal.evaluation.widerface import GroundTruthImage
from tests.paths import shared_file


def test_box_coverage_and_tally_count_pixels():
    mask = np.zeros((100, 100), bool)
    mask[10:30, 10:30] = True
    boxes = np.array([[10, 10, 20, 20], [20, 10, 20, 20], [50, 50, 30, 30]], np.float64)  # xywh
    np.testing.assert_allclose(box_coverage(mask, boxes), [1.0, 0.5, 0.0])
    image = GroundTruthImage("e", "n", boxes, {s: np.array([0, 1, 2]) for s in ("easy", "medium", "hard")})
    tally = CoverageTally()
    tally.add(image, mask)
    assert tally.summary()["faces"]["easy"] == 1  # only the third is 24 px high or more
    image.boxes[:, 3] = 24  # faces: x 10-40 y 10-34 (two boxes) and x 50-80 y 50-74, 1440 pixels
    mask[10:34, 10:30] = True
    mask[90:100, 0:10] = True  # 100 background pixels
    tally = CoverageTally()
    tally.add(image, mask)
    summary = tally.summary()
    assert summary["faces"]["hard"] == 3 and summary["covered_share"]["hard"] == pytest.approx(1 / 3)
    assert summary["non_face_pixels_changed"] == pytest.approx(100 / (100 * 100 - 1440))


@pytest.fixture(scope="module")
def wider_args(weights_path, mesh_weights_path):
    ground_truth = shared_file("widerface", "ground_truth", "wider_face_val.mat").parent
    images = ground_truth.parent / "val_sample" / "images"
    return [
        *("--images", str(images), "--gt", str(ground_truth)),
        *("--weights", str(weights_path), "--mesh-weights", str(mesh_weights_path)),
    ]


def test_eval_anonymize_covers_the_faces_it_finds(tmp_path, wider_args):
    from facelocal.cli import main

    out = tmp_path / "anonymize.json"
    assert main(["eval", "anonymize", *wider_args, "--limit", "6", "--sample", "stride", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["tta"] == ANONYMIZE_TTA and record["postprocess"]["score_threshold"] == ANONYMIZE_SCORE_THRESHOLD
    assert record["faces"]["hard"] >= 10 and record["regions"]["mesh"] >= 1
    assert min(record["covered_share"].values()) >= 0.75
    assert 0.0 < record["non_face_pixels_changed"] < 0.2


def test_eval_quality_reports_usable_shares(tmp_path, wider_args):
    from facelocal.cli import main

    out = tmp_path / "quality.json"
    assert main(["eval", "quality", *wider_args, "--limit", "6", "--sample", "stride", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    for setting in ("easy", "medium", "hard"):
        assert 0.0 <= record["usable_share"][setting] <= record["detected_share"][setting] <= 1.0
    # Easy faces are the large, clear ones: more of them usable than of the Hard set.
    assert record["usable_share"]["easy"] > record["usable_share"]["hard"]
    assert record["thresholds"]["min_sharpness"] == 0.05
