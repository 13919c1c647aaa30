"""The WIDER FACE protocol on the official ground truth with predictions derived from it, and on tiny
hand-made cases whose AP is worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from facelocal.evaluation.wider_txt import read_prediction, read_predictions, write_prediction
from facelocal.evaluation.widerface import SETTINGS, GroundTruthImage, evaluate, load_ground_truth
from tests.eval import official_reference

# The two validation images on which even the ground truth itself cannot score perfectly under the official
# protocol: one has a kept face annotated twice (the copy's prediction is taken by the first face, so it is a
# false positive and the copy is never recalled), the other a face with width -2 that no box can overlap.
GT_QUIRKS = {"21--Festival/21_Festival_Festival_21_604", "39--Ice_Skating/39_Ice_Skating_iceskiing_39_583"}


def subset(ground_truth, events: int = 4, per_event: int = 6) -> dict[str, GroundTruthImage]:
    """A few images from the first ``events`` events: enough faces of every setting, fast to score."""
    chosen: dict[str, GroundTruthImage] = {}
    for event in sorted({g.event for g in ground_truth.values()})[:events]:
        keys = sorted(k for k, g in ground_truth.items() if g.event == event and k not in GT_QUIRKS)
        chosen.update({k: ground_truth[k] for k in keys[:per_event]})
    return chosen


def perfect(images, seed: int = 0) -> dict[str, np.ndarray]:
    """Every ground-truth face as a prediction, distinct scores in (0.5, 1]."""
    rng = np.random.default_rng(seed)
    return {k: np.column_stack([g.boxes, rng.uniform(0.5, 1.0, len(g.boxes))]) for k, g in images.items()}


def test_ground_truth_is_the_official_validation_set(ground_truth):
    assert len(ground_truth) == 3226
    counts = {s: sum(len(g.keep[s]) for g in ground_truth.values()) for s in SETTINGS}
    assert counts == {"easy": 7211, "medium": 13319, "hard": 31958}
    # Settings nest: every easy face is a medium face, every medium face a hard face.
    for g in ground_truth.values():
        assert set(g.keep["easy"]) <= set(g.keep["medium"]) <= set(g.keep["hard"])


def test_perfect_detector_scores_one_on_every_setting(ground_truth):
    images = subset(ground_truth)
    result = evaluate(perfect(images), images)
    for setting in SETTINGS:
        assert result.settings[setting].ap == pytest.approx(1.0, abs=1e-12)
        assert result.settings[setting].faces == sum(len(g.keep[setting]) for g in images.values())
    assert result.images == len(images)


def test_perfect_detector_on_the_whole_set_loses_only_on_the_two_annotation_quirks(ground_truth):
    assert evaluate(perfect(ground_truth), ground_truth).settings["hard"].ap < 1.0
    clean = {k: g for k, g in ground_truth.items() if k not in GT_QUIRKS}
    result = evaluate(perfect(clean), clean)
    assert [result.settings[s].ap for s in SETTINGS] == pytest.approx([1.0, 1.0, 1.0], abs=1e-12)


def test_dropping_half_the_hard_only_faces_caps_hard_recall_and_spares_easy_and_medium(ground_truth):
    images = subset(ground_truth)
    predictions = perfect(images)
    dropped = 0
    for key, g in images.items():
        hard_only = np.setdiff1d(g.keep["hard"], g.keep["medium"])
        drop = hard_only[::2]
        dropped += len(drop)
        predictions[key] = np.delete(predictions[key], drop, axis=0)
    assert dropped > 20
    result = evaluate(predictions, images)
    hard_faces = result.settings["hard"].faces
    # Precision stays 1 while recall stops at the faces left: AP is exactly that recall.
    assert result.settings["hard"].ap == pytest.approx((hard_faces - dropped) / hard_faces, abs=1e-12)
    assert result.settings["hard"].recall.max() == pytest.approx((hard_faces - dropped) / hard_faces)
    assert result.settings["easy"].ap == pytest.approx(1.0) and result.settings["medium"].ap == pytest.approx(1.0)


def test_duplicates_are_false_positives(ground_truth):
    images = subset(ground_truth)
    # Each face predicted twice with the same score: every threshold sees one hit and one false positive.
    predictions = {k: np.repeat(p, 2, axis=0) for k, p in perfect(images).items()}
    result = evaluate(predictions, images)
    for setting in SETTINGS:
        assert result.settings[setting].ap == pytest.approx(0.5, abs=1e-12)


def test_false_positives_below_every_hit_leave_ap_but_lower_final_precision(ground_truth):
    images = subset(ground_truth)
    far = np.array([[-5000.0, -5000.0, 30.0, 30.0, 0.1]])
    predictions = {k: np.vstack([p, np.repeat(far, len(p), axis=0)]) for k, p in perfect(images).items()}
    result = evaluate(predictions, images)
    for setting in SETTINGS:
        assert result.settings[setting].ap == pytest.approx(1.0)
    hard = result.settings["hard"]
    # At threshold 0 every box counts: all faces hit, half of the non-ignored proposals false.
    assert hard.recall[-1] == pytest.approx(1.0)
    proposals = hard.faces + sum(len(g.boxes) for g in images.values())
    assert hard.precision[-1] == pytest.approx(hard.faces / proposals)


def test_boxes_jittered_below_iou_half_are_misses(ground_truth):
    images = subset(ground_truth)
    predictions = perfect(images)
    jittered = 0
    for key, pred in predictions.items():
        # Every other face grown 2.5x about its centre: IoU with its face about 0.16, and worth less than every hit.
        rows = np.arange(0, len(pred), 2)
        centre = pred[rows, :2] + pred[rows, 2:4] / 2
        pred[rows, 2:4] *= 2.5
        pred[rows, :2] = centre - pred[rows, 2:4] / 2
        pred[rows, 4] = 0.01
        jittered += int(np.isin(rows, images[key].keep["hard"]).sum())
    result = evaluate(predictions, images)
    hard = result.settings["hard"]
    assert hard.ap == pytest.approx((hard.faces - jittered) / hard.faces, abs=1e-12)
    # The grown boxes hit nothing, so they are all false positives at the lowest threshold.
    assert hard.precision[-1] < hard.precision[0] == 1.0


def test_matches_the_official_code_on_noisy_predictions(ground_truth):
    images = subset(ground_truth, events=3, per_event=3)
    rng = np.random.default_rng(7)
    predictions = {}
    for key, g in images.items():
        boxes = g.boxes + rng.normal(0, 0.15, g.boxes.shape) * g.boxes[:, [2, 3, 2, 3]]
        extra = rng.uniform(0, 400, (5, 4)) * [1, 1, 0.2, 0.2]
        pred = np.column_stack([np.vstack([boxes, extra]), rng.uniform(0, 1, len(boxes) + 5)])
        predictions[key] = pred[np.argsort(-pred[:, 4], kind="stable")]
    result = evaluate(predictions, images)
    for setting in SETTINGS:
        expected = official_reference.evaluate(predictions, images, setting)
        assert 0.1 < expected < 0.95
        assert result.settings[setting].ap == pytest.approx(expected, abs=1e-12)


def _image(boxes, keep) -> GroundTruthImage:
    boxes = np.asarray(boxes, float)
    keep = np.asarray(keep, np.int64)
    return GroundTruthImage("0--Test", "img", boxes, {s: keep for s in SETTINGS})


def test_hand_made_hit_false_positive_hit():
    gt = {"0--Test/img": _image([[0, 0, 10, 10], [100, 100, 10, 10]], [0, 1])}
    pred = {"0--Test/img": np.array([[0, 0, 10, 10, 0.9], [50, 50, 10, 10, 0.8], [100, 100, 10, 10, 0.7]])}
    # Normalised scores 1, 0.5, 0: (P, R) = (1, .5) then (.5, .5) then (2/3, 1); envelope area .5*1 + .5*2/3.
    assert evaluate(pred, gt).settings["hard"].ap == pytest.approx(0.5 + 0.5 * 2 / 3, abs=1e-12)


def test_hand_made_ignored_face_is_neither_hit_nor_miss():
    gt = {"0--Test/img": _image([[0, 0, 10, 10], [100, 100, 10, 10], [200, 200, 10, 10]], [0, 1])}
    pred = np.array([[200, 200, 10, 10, 0.95], [0, 0, 10, 10, 0.9], [100, 100, 10, 10, 0.8]])
    result = evaluate({"0--Test/img": pred}, gt).settings["hard"]
    assert result.faces == 2 and result.ap == pytest.approx(1.0)
    # Had the ignored face counted as a face, its hit would be needed; as a false positive, AP would drop.
    counted = {"0--Test/img": _image(gt["0--Test/img"].boxes, [0, 1, 2])}
    assert evaluate({"0--Test/img": pred}, counted).settings["hard"].ap == pytest.approx(1.0)
    unmatched = pred.copy()
    unmatched[0, :2] = 500
    # Now a false positive on top: (P, R) = (0, 0), (.5, .5), (2/3, 1); the envelope lifts .5 to 2/3.
    assert evaluate({"0--Test/img": unmatched}, gt).settings["hard"].ap == pytest.approx(2 / 3)


def test_hand_made_missing_predictions_still_count_faces():
    gt = {"0--Test/a": _image([[0, 0, 10, 10]], [0]), "0--Test/b": _image([[0, 0, 10, 10]], [0])}
    gt = {k: GroundTruthImage("0--Test", k.split("/")[1], g.boxes, g.keep) for k, g in gt.items()}
    pred = {"0--Test/a": np.array([[0, 0, 10, 10, 0.9]]), "0--Test/b": np.zeros((0, 5))}
    assert evaluate(pred, gt).settings["easy"].ap == pytest.approx(0.5)


def test_unknown_image_is_an_error(ground_truth):
    with pytest.raises(KeyError, match="not in the ground truth"):
        evaluate({"0--Parade/nope": np.zeros((0, 5))}, ground_truth)


def test_txt_round_trip(tmp_path, ground_truth):
    key = "0--Parade/0_Parade_marchingband_1_465"
    faces = np.column_stack([ground_truth[key].boxes + 0.25, np.linspace(0.99, 0.02, len(ground_truth[key].boxes))])
    path = write_prediction(tmp_path, key, faces)
    assert path == tmp_path / "0--Parade" / "0_Parade_marchingband_1_465.txt"
    lines = path.read_text().splitlines()
    assert lines[0] == "0_Parade_marchingband_1_465" and int(lines[1]) == len(faces)
    np.testing.assert_allclose(read_prediction(path), faces, atol=1e-6)
    write_prediction(tmp_path, "1--Handshaking/empty", np.zeros((0, 5)))
    loaded = read_predictions(tmp_path)
    assert set(loaded) == {key, "1--Handshaking/empty"} and loaded["1--Handshaking/empty"].shape == (0, 5)


def test_missing_ground_truth_names_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="wider_face_val.mat"):
        load_ground_truth(tmp_path)
