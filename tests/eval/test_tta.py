"""Test-time augmentation: the flip mapping, the scale plan, box voting, and flip TTA on a real photo."""

from __future__ import annotations

import numpy as np
import pytest

from facelocal.detections import FaceDetections
from facelocal.tta_ops import MultiScalePlan, box_voting, flip_image, unflip
from tests.paths import shared_file

# Every tenth of the 105 WIDER val-sample photos whose first view finds a face under 24 px scoring 0.3 or more
# (so auto runs its 2x pair), in sorted order: 11 photos, 259 annotated faces.
SMALL_FACE_VAL_IMAGES = (
    "0--Parade/0_Parade_Parade_0_102",
    "10--People_Marching/10_People_Marching_People_Marching_2_259",
    "13--Interview/13_Interview_Interview_On_Location_13_138",
    "2--Demonstration/2_Demonstration_Demonstrators_2_378",
    "20--Family_Group/20_Family_Group_Family_Group_20_22",
    "29--Students_Schoolkids/29_Students_Schoolkids_Students_Schoolkids_29_42",
    "36--Football/36_Football_americanfootball_ball_36_615",
    "44--Aerobics/44_Aerobics_Aerobics_44_742",
    "50--Celebration_Or_Party/50_Celebration_Or_Party_birthdayparty_50_479",
    "55--Sports_Coach_Trainer/55_Sports_Coach_Trainer_sportcoaching_55_218",
    "6--Funeral/6_Funeral_Funeral_6_733",
)


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
    # A voted face scores the pair's mean, so near the threshold a face needs both views: about the single
    # pass's faces (28 -> 27 here; scored by the best view's score instead, the mirror added 3).
    assert abs(len(voted) - len(plain)) <= 2
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
    assert TTAPlan().views(400, 400, base) == [views[0]]


def test_merge_unflips_mirrored_views_and_leaves_a_single_view_alone():
    from facelocal.preprocess import ResizePolicy
    from facelocal.tta import TTAPlan

    plan = TTAPlan(flip=True)
    views = plan.views(100, 80, ResizePolicy())
    plain = _faces([[10, 10, 30, 30]], [0.9])
    mirrored = _faces([[70, 10, 90, 30]], [0.8])  # the same face, found on the mirrored image
    merged = plan.merge(views, [plain, mirrored], max_faces=10, score_threshold=0.5)
    # One face: the pair's mean score.
    assert len(merged) == 1 and merged.scores.tolist() == pytest.approx([0.85])
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
    assert plan == TTAPlan(flip=True, zoom=SmallFaceZoom())
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
    # Already at the 2000 px cap: nothing to enlarge.
    assert plan.follow_up_views(2000, 1000, _faces([[10, 10, 30, 40]], [0.9], 2000, 1000)) == []
    assert TTAPlan.parse("flip,multiscale").follow_up_views(1024, 768, small) == []


def test_merge_scores_by_mirror_pair_agreement_and_cuts_at_the_threshold():
    from facelocal.preprocess import ResizePolicy
    from facelocal.tta import TTAPlan, View

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
    assert plan.view_threshold(0.5) == TTAPlan.parse("flip").view_threshold(0.5) == pytest.approx(0.02)
    # Without a mirror, every view is its own pair: the best score, and each view cut at the threshold itself.
    multiscale = TTAPlan.parse("multiscale")
    assert multiscale.view_threshold(0.5) == 0.5
    two = [View(views[0].placement, False), View(views[2].placement, False)]
    assert multiscale.merge(two, [base, zoomed], 10, 0.5).scores.tolist() == pytest.approx([0.9, 0.9])


class RecordingForward:
    """The exported graph, remembering each batch's shape: which views ran."""

    def __init__(self, model_path) -> None:
        from facelocal.runtime import exported_forward

        self.forward = exported_forward(model_path)
        self.batches: list[tuple[int, ...]] = []

    def __call__(self, batch: np.ndarray):
        self.batches.append(batch.shape)
        return self.forward(batch)


def _zoomed_pair(height: int, width: int) -> tuple[int, ...]:
    """The batch of auto's 2x pair for a photo of this size: long side doubled, at most 2000."""
    scale = min(2.0, 2000 / max(width, height))
    return (2, 3, round(height * scale), round(width * scale))


def test_detector_runs_the_2x_pair_only_where_the_first_view_finds_small_faces(onnx_model_path):
    from facelocal.config import EVAL_POSTPROCESS
    from facelocal.detector import Detector
    from facelocal.imageio import load_image
    from facelocal.tta import TTAPlan

    forward = RecordingForward(onnx_model_path)
    detector = Detector(forward, postprocess=EVAL_POSTPROCESS)
    plan = TTAPlan.parse("auto")
    crowd = load_image(shared_file("widerface", "val_sample", "images", f"{SMALL_FACE_VAL_IMAGES[0]}.jpg"))
    faces = detector.detect_augmented(crowd, plan)
    assert forward.batches == [(2, 3, *crowd.shape[:2]), _zoomed_pair(*crowd.shape[:2])]
    assert len(faces) and faces.scores.min() > EVAL_POSTPROCESS.score_threshold
    # One face of 192 px: the pair at its size only.
    forward.batches.clear()
    closeup = load_image(shared_file("images", "single_face_closeup.jpg"))
    detector.detect_augmented(closeup, plan)
    assert forward.batches == [(2, 3, *closeup.shape[:2])]


def test_auto_keeps_the_precision_of_a_single_pass_at_the_api_threshold(onnx_model_path, ground_truth):
    """At the API's 0.5, the share of returned faces that lie on an annotated face (IoU >= 0.5) stays within
    0.03 of a single pass, while more annotated faces are found (measured: 0.879 of 190 faces against 0.873
    of 229)."""
    from facelocal.config import SERVE_POSTPROCESS
    from facelocal.detector import Detector
    from facelocal.imageio import load_image
    from facelocal.postprocess import box_iou
    from facelocal.tta import TTAPlan

    forward = RecordingForward(onnx_model_path)
    detector = Detector(forward, postprocess=SERVE_POSTPROCESS)
    counts = {"none": np.zeros(2, int), "auto": np.zeros(2, int)}  # faces on an annotated face, faces returned
    for key in SMALL_FACE_VAL_IMAGES:
        rgb = load_image(shared_file("widerface", "val_sample", "images", f"{key}.jpg"))
        xywh = ground_truth[key].boxes.astype(np.float64)
        annotated = np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])
        for mode in counts:
            forward.batches.clear()
            found = detector.detect_augmented(rgb, TTAPlan.parse(mode))
            hits = (box_iou(found.boxes.astype(np.float64), annotated).max(axis=1) >= 0.5).sum() if len(found) else 0
            counts[mode] += [hits, len(found)]
        assert forward.batches[-1] == _zoomed_pair(*rgb.shape[:2]), key  # auto's follow-up ran
    precision = {mode: hits / returned for mode, (hits, returned) in counts.items()}
    assert abs(precision["auto"] - precision["none"]) <= 0.03, (counts, precision)
    assert counts["auto"][0] >= counts["none"][0] + 20, counts


def test_box_voting_ranks_by_the_voted_score_then_cuts_at_min_score_and_max_faces():
    # Face A leads with 0.9 but only one view of the pair saw it; face B scores 0.8 in both.
    pair = [_faces([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8]), _faces([[50, 50, 60, 60]], [0.8])]
    voted = box_voting(pair, agreement=[0, 0])
    assert voted.scores.tolist() == pytest.approx([0.8, 0.45])
    np.testing.assert_allclose(voted.boxes, [[50, 50, 60, 60], [0, 0, 10, 10]])
    assert box_voting(pair, agreement=[0, 0], min_score=0.5).scores.tolist() == pytest.approx([0.8])
    assert box_voting(pair, agreement=[0, 0], max_faces=1).scores.tolist() == pytest.approx([0.8])
    assert box_voting(pair, min_score=0.85).scores.tolist() == pytest.approx([0.9])
