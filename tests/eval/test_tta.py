"""Test-time augmentation: the flip mapping, the scale plan, box voting, and flip TTA on a real photo."""

from __future__ import annotations

import numpy as np
import pytest

from facelocal.detections import FaceDetections
from facelocal.tta_ops import MultiScalePlan, box_voting, flip_image, unflip
from tests.paths import shared_file

# A WIDER val-sample photo whose first view finds faces under 24 px, so that auto runs its 2x pair.
SMALL_FACE_VAL_IMAGE = "TBD"


def _faces(boxes, scores, width=100, height=80, landmarks=None) -> FaceDetections:
    boxes = np.asarray(boxes, np.float32)
    if landmarks is None:
        landmarks = np.zeros((len(boxes), 5, 2), np.float32)
    return FaceDetections(boxes, np.asarray(scores, np.float32), np.asarray(landmarks, np.float32), width, height)


def test_unflip_mirrors_boxes_and_swaps_landmark_pairs_back():
    points = [[30, 20], [50, 20], [40, 30], [32, 40], [48, 40]]  # left eye at x 30 on the mirrored image
    found = _faces([[20, 10, 60, 50]], [0.9], landmarks=[points])
    back = unflip(found)
    np.testing.assert_allclose(back.boxes, [[40, 10, 80, 50]])
    # The subject's left eye sat at mirrored x 50 (labelled right); it is 100 - 50 = 50 back home.
    np.testing.assert_allclose(back.landmarks[0], [[50, 20], [70, 20], [60, 30], [52, 40], [68, 40]])
    np.testing.assert_allclose(unflip(back).boxes, found.boxes)
    np.testing.assert_allclose(unflip(back).landmarks, found.landmarks)


def test_flip_image_is_a_mirror():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(flip_image(rgb)[:, 0], rgb[:, 2])


def test_multiscale_plan_bounds_long_side_and_upscale():
    plan = MultiScalePlan()
    # 1024x768 (WIDER-like): 500/768, 800/768, 1100/768 and 1400/768 scale; 1700 is capped to the 2000 long side.
    assert plan.long_sides(1024, 768) == [667, 1067, 1467, 1867, 2000]
    # A VGA frame: scales above 2x are skipped, the long side never passes 2000.
    sides = plan.long_sides(640, 480)
    assert sides == [667, 1067] and max(sides) <= 2000
    assert MultiScalePlan(max_upscale=10).long_sides(640, 480) == [667, 1067, 1467, 1867, 2000]


def test_box_voting_averages_each_cluster_by_score():
    view_a = _faces([[0, 0, 10, 10], [100, 100, 120, 120]], [0.9, 0.5])
    view_b = _faces([[2, 0, 12, 10]], [0.3])
    merged = box_voting([view_a, view_b], iou_threshold=0.4)
    assert len(merged) == 2
    # IoU of the two left boxes is 80/120 = 0.67: one cluster, x shifted by 2 * 0.3 / 1.2 = 0.5.
    np.testing.assert_allclose(merged.boxes[0], [0.5, 0, 10.5, 10], atol=1e-6)
    assert merged.scores.tolist() == pytest.approx([0.9, 0.5])
    np.testing.assert_allclose(merged.boxes[1], [100, 100, 120, 120])


def test_box_voting_keeps_clusters_apart_below_the_threshold_and_averages_landmarks():
    lm_a = np.full((1, 5, 2), 10.0)
    lm_b = np.full((1, 5, 2), 20.0)
    close = box_voting(
        [_faces([[0, 0, 10, 10]], [0.6], landmarks=lm_a), _faces([[1, 0, 11, 10]], [0.2], landmarks=lm_b)]
    )
    np.testing.assert_allclose(close.landmarks, np.full((1, 5, 2), 12.5))
    apart = box_voting([_faces([[0, 0, 10, 10]], [0.6]), _faces([[6, 0, 16, 10]], [0.2])])  # IoU 4/16
    assert len(apart) == 2
    assert len(box_voting([FaceDetections.empty(100, 80)])) == 0


def test_flip_tta_on_a_real_photo_finds_the_same_faces_with_landmarks_unswapped(detector, selfie_rgb):
    from facelocal.postprocess import box_iou
    from facelocal.tta import TTAPlan

    plain = detector.detect([selfie_rgb])[0]
    plain = plain.select(plain.scores > 0.5)
    flipped = unflip(detector.detect([np.ascontiguousarray(flip_image(selfie_rgb))])[0])
    flipped = flipped.select(flipped.scores > 0.5)
    assert len(plain) >= 5 and abs(len(flipped) - len(plain)) <= 1
    best = box_iou(plain.boxes, flipped.boxes).max(axis=1)
    assert np.median(best) > 0.8
    # Frontal faces: the left eye (subject's, image-left as the public annotations) has the smaller x.
    for faces in (plain, flipped):
        assert np.mean(faces.landmarks[:, 0, 0] < faces.landmarks[:, 1, 0]) > 0.9
        assert np.mean(faces.landmarks[:, 3, 0] < faces.landmarks[:, 4, 0]) > 0.9

    voted = detector.detect_augmented(selfie_rgb, TTAPlan.parse("flip"))
    voted = voted.select(voted.scores > 0.5)
    # The mirrored view adds a few faces near the threshold (28 -> 31 here), never loses one.
    assert len(plain) <= len(voted) <= len(plain) + 3
    assert np.median(box_iou(plain.boxes, voted.boxes).max(axis=1)) > 0.85
    assert np.mean(voted.landmarks[:, 0, 0] < voted.landmarks[:, 1, 0]) > 0.9


def test_tta_parse_takes_the_canonical_spellings_only():
    from facelocal.tta import TTA_MODES, TTAPlan

    assert TTAPlan.parse("flip,multiscale") == TTAPlan(flip=True, multiscale=True)
    assert not TTAPlan.parse("none").enabled
    assert [TTAPlan.parse(mode).mode for mode in TTA_MODES] == list(TTA_MODES)
    for text in ("rotate", "", "multiscale,flip", "flip, multiscale", "Flip"):
        with pytest.raises(ValueError, match="unknown"):
            TTAPlan.parse(text)


def test_views_put_the_base_placement_first_then_the_scales_then_their_mirrors():
    from facelocal.preprocess import ResizePolicy
    from facelocal.tta import TTAPlan

    base = ResizePolicy("letterbox", 640)
    # 400x400 plans long sides 500 and 800 (short sides 500 and 800, at most 2x up).
    views = TTAPlan(flip=True, multiscale=True).views(400, 400, base)
    assert [(v.placement.resized_w, v.placement.canvas_w, v.mirrored) for v in views] == [
        (400, 640, False),
        (500, 500, False),
        (800, 800, False),
        (400, 640, True),
        (500, 500, True),
        (800, 800, True),
    ]
    # On a fixed canvas the scales go onto it, and those beyond it are skipped.
    fixed = TTAPlan(multiscale=True).views(400, 400, base, max_canvas=640)
    assert [(v.placement.resized_w, v.placement.canvas_w) for v in fixed] == [(400, 640), (500, 640)]
    assert TTAPlan().views(400, 400, base) == [views[0]]


def test_merge_unflips_mirrored_views_and_leaves_a_single_view_alone():
    from facelocal.preprocess import ResizePolicy
    from facelocal.tta import TTAPlan

    plan = TTAPlan(flip=True)
    views = plan.views(100, 80, ResizePolicy())
    plain = _faces([[10, 10, 30, 30]], [0.9])
    mirrored = _faces([[70, 10, 90, 30]], [0.8])  # the same face, found on the mirrored image
    merged = plan.merge(views, [plain, mirrored], max_faces=10, score_threshold=0.5)
    assert len(merged) == 1 and merged.scores.tolist() == pytest.approx([0.9])
    np.testing.assert_allclose(merged.boxes, [[10, 10, 30, 30]], atol=1e-5)
    assert TTAPlan().merge(views[:1], [plain], max_faces=10, score_threshold=0.5) is plain


def test_box_voting_keeps_a_box_of_no_area_as_its_own_face():
    # IoU of a point with itself is 0: it must still form its own cluster rather than an empty one.
    merged = box_voting([_faces([[8, 8, 8, 8], [0, 0, 10, 10]], [0.9, 0.5]), _faces([[1, 0, 11, 10]], [0.4])])
    np.testing.assert_allclose(merged.boxes, [[8, 8, 8, 8], [0.4444444, 0, 10.444445, 10]], atol=1e-5)
    assert merged.scores.tolist() == pytest.approx([0.9, 0.5])


def test_agreement_scores_a_face_by_the_views_of_its_best_group_that_saw_it():
    both = [_faces([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8]), _faces([[1, 0, 11, 10]], [0.7])]
    merged = box_voting(both, agreement=[0, 0])
    # The first face: best 0.9 and 0.7 over two views; the second, seen by one view only: 0.8 / 2.
    assert merged.scores.tolist() == pytest.approx([0.8, 0.4])
    np.testing.assert_allclose(merged.boxes, box_voting(both).boxes)
    # Each view its own group is the best score; with two pairs, the pair that agrees best sets the score.
    assert box_voting(both, agreement=[0, 1]).scores.tolist() == pytest.approx([0.9, 0.8])
    four = both + [_faces([[50, 50, 60, 60]], [0.6]), _faces([[0, 0, 10, 10]], [0.5])]
    assert box_voting(four, agreement=[0, 0, 1, 1]).scores.tolist() == pytest.approx([0.8, 0.4])
    assert box_voting(four, agreement=[0, 1, 0, 1]).scores.tolist() == pytest.approx([0.7, 0.6])  # B, then A


def test_auto_follows_up_with_the_mirrored_pair_at_2x_only_after_a_small_confident_face():
    from facelocal.preprocess import ResizePolicy
    from facelocal.tta import SmallFaceZoom, TTAPlan

    plan = TTAPlan.parse("auto")
    assert plan == TTAPlan(flip=True, zoom=SmallFaceZoom(), agree=True)
    assert [(v.placement.resized_w, v.mirrored) for v in plan.views(1024, 768, ResizePolicy())] == [
        (1024, False),
        (1024, True),
    ]
    small = _faces([[10, 10, 30, 40]], [0.3], 1024, 768)  # shorter side 20 px
    assert [
        (v.placement.resized_w, v.placement.resized_h, v.mirrored) for v in plan.follow_up_views(1024, 768, small)
    ] == [
        (2000, 1500, False),
        (2000, 1500, True),
    ]
    for unwanted in (
        _faces([[10, 10, 30, 40]], [0.29], 1024, 768),  # not confident enough
        _faces([[10, 10, 34, 40]], [0.9], 1024, 768),  # 24 px: not small
        FaceDetections.empty(1024, 768),
    ):
        assert plan.follow_up_views(1024, 768, unwanted) == []
    # Already at the 2000 px cap: nothing to enlarge. On a fixed canvas: only if the 2x image fits it.
    assert plan.follow_up_views(2000, 1000, _faces([[10, 10, 30, 40]], [0.9], 2000, 1000)) == []
    assert plan.follow_up_views(1024, 768, small, max_canvas=640) == []
    fitted = plan.follow_up_views(320, 200, _faces([[10, 10, 30, 40]], [0.9], 320, 200), max_canvas=640)
    assert [(v.placement.resized_w, v.placement.canvas_w, v.mirrored) for v in fitted] == [
        (640, 640, False),
        (640, 640, True),
    ]
    assert TTAPlan.parse("flip,multiscale").follow_up_views(1024, 768, small) == []


def test_auto_scores_by_mirror_pair_agreement_and_cuts_at_the_threshold():
    from facelocal.preprocess import ResizePolicy
    from facelocal.tta import TTAPlan

    plan = TTAPlan.parse("auto")
    views = plan.views(100, 80, ResizePolicy()) + plan.follow_up_views(100, 80, _faces([[0, 0, 10, 10]], [0.9]))
    base = _faces([[10, 10, 30, 30], [50, 10, 60, 20]], [0.9, 0.8])
    mirrored = _faces([[70, 10, 90, 30]], [0.7])  # the first face only
    zoomed = _faces([[50, 10, 60, 20]], [0.9])  # the second face, in both 2x views (image pixels)
    zoomed_mirrored = _faces([[40, 10, 50, 20]], [0.9])
    merged = plan.merge(views, [base, mirrored, zoomed, zoomed_mirrored], max_faces=10, score_threshold=0.5)
    # First face: its base pair agrees, (0.9 + 0.7) / 2; second: the 2x pair, (0.9 + 0.9) / 2, beats 0.8 / 2.
    assert merged.scores.tolist() == pytest.approx([0.9, 0.8])  # ranked by the voted score
    # A face one view of its only pair saw at 0.9 scores 0.45: under the threshold.
    alone = plan.merge(views[:2], [base.select([0]), FaceDetections.empty(100, 80)], 10, score_threshold=0.5)
    assert len(alone) == 0
    assert plan.view_threshold(0.5) == pytest.approx(0.02) and TTAPlan.parse("flip").view_threshold(0.5) == 0.5


def test_detector_runs_the_2x_pair_only_where_the_first_view_finds_small_faces(onnx_model_path):
    from facelocal.config import EVAL_POSTPROCESS
    from facelocal.detector import Detector
    from facelocal.imageio import load_image
    from facelocal.runtime import exported_forward
    from facelocal.tta import TTAPlan

    forward = exported_forward(onnx_model_path, "onnxruntime", 0, None)
    batches: list[tuple[int, ...]] = []

    def recording(batch: np.ndarray):
        batches.append(batch.shape)
        return forward(batch)

    detector = Detector(recording, postprocess=EVAL_POSTPROCESS)
    plan = TTAPlan.parse("auto")
    # A WIDER val photo with faces under 24 px: the pair at its size, then the pair at 2x (long side capped at 2000).
    crowd = load_image(shared_file("widerface", "val_sample", "images", f"{SMALL_FACE_VAL_IMAGE}.jpg"))
    height, width = crowd.shape[:2]
    faces = detector.detect_augmented(crowd, plan)
    zoomed = (round(height * 2000 / width), 2000) if width >= 1000 else (2 * height, 2 * width)
    assert batches == [(2, 3, height, width), (2, 3, *zoomed)]
    assert len(faces) and faces.scores.min() > EVAL_POSTPROCESS.score_threshold
    # One face of 192 px: the pair only.
    batches.clear()
    closeup = load_image(shared_file("images", "single_face_closeup.jpg"))
    detector.detect_augmented(closeup, plan)
    assert batches == [(2, 3, *closeup.shape[:2])]


def test_box_voting_ranks_by_the_voted_score_then_cuts_at_min_score_and_max_faces():
    # Face A leads with 0.9 but only one view of the pair saw it; face B scores 0.8 in both.
    pair = [_faces([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8]), _faces([[50, 50, 60, 60]], [0.8])]
    voted = box_voting(pair, agreement=[0, 0])
    assert voted.scores.tolist() == pytest.approx([0.8, 0.45])
    np.testing.assert_allclose(voted.boxes, [[50, 50, 60, 60], [0, 0, 10, 10]])
    assert box_voting(pair, agreement=[0, 0], min_score=0.5).scores.tolist() == pytest.approx([0.8])
    assert box_voting(pair, agreement=[0, 0], max_faces=1).scores.tolist() == pytest.approx([0.8])
    assert box_voting(pair, min_score=0.85).scores.tolist() == pytest.approx([0.9])
