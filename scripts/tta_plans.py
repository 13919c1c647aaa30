#!/usr/bin/env python
"""Candidate test-time augmentation plans on the WIDER FACE val sample: AP, time and precision at score 0.5.

Each image is run once per view (the original size, its mirror, 1.5x and 2x up with and without the mirror,
the long side capped at 2000 px as in :class:`facelocal.tta_ops.MultiScalePlan`), each view timed on its own;
a plan is then a choice of views per image, voted as :class:`facelocal.tta.TTAPlan` votes (box voting at IoU
0.4, voted faces kept above the evaluation's 0.02), its time the sum of its views' times. So every plan is
scored on the same detections, and the time ratios come from one run. "if small" plans add their upscales only
to images whose first pass found a small face (:class:`facelocal.tta.SmallFaceZoom`: a face scoring at least 0.3
with a shorter side under 24 px; ``--tta auto`` is "flip, 2x mirrored too if small" with mirror-pair scores).
Each plan is scored three ways (``box_voting``'s ``agreement``): a voted face's best score, the mean over all the
views of each view's best score in it, and the mean over each mirrored pair, best pair taken. Precision at 0.5 is
the share of faces scoring above 0.5 that overlap an annotated face (any, IoU >= 0.5): what the API returns at its
default threshold.

    python scripts/tta_plans.py --onnx model.onnx [--images DIR] [--gt DIR] [--limit N] [--cache views.pkl]
"""

from __future__ import annotations

import argparse
import pickle
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facelocal.cli.eval import DEFAULT_GROUND_TRUTH, DEFAULT_VAL_IMAGES
from facelocal.config import EVAL_POSTPROCESS
from facelocal.detections import FaceDetections
from facelocal.detector import Detector
from facelocal.evaluation.wider_txt import detections_to_xywhs
from facelocal.evaluation.widerface import evaluate, load_ground_truth
from facelocal.imageio import load_image
from facelocal.postprocess import box_iou
from facelocal.preprocess import ResizePolicy
from facelocal.tta import VOTE_IOU, SmallFaceZoom
from facelocal.tta_ops import box_voting, flip_image, unflip
from facelocal.weights import resolve_data

View = tuple[float, bool]  # (upscale, mirrored)
BASE, MIRROR = (1.0, False), (1.0, True)
VIEWS: tuple[View, ...] = (BASE, MIRROR, (1.5, False), (1.5, True), (2.0, False), (2.0, True))
ZOOM = SmallFaceZoom()
MAX_LONG_SIDE = ZOOM.max_long_side
# How a voted face is scored: each view its own group (the best score), one group, or one group per scale.
SCORINGS: dict[str, Callable[[list[View]], list[int] | None]] = {
    "best score": lambda views: None,
    "mean of all views": lambda views: [0] * len(views),
    "mean of each mirrored pair": lambda views: [sorted({s for s, _ in views}).index(s) for s, _ in views],
}


def run_views(detector: Detector, rgb: np.ndarray) -> dict[View, tuple[FaceDetections, float]]:
    """Each view's faces (in image pixels, un-mirrored) and seconds."""
    height, width = rgb.shape[:2]
    mirrored = np.ascontiguousarray(flip_image(rgb))
    found = {}
    for scale, mirror in VIEWS:
        side = round(max(width, height) * min(scale, MAX_LONG_SIDE / max(width, height)))
        view = detector if scale == 1.0 else detector.with_resize(ResizePolicy("long", side))
        start = time.perf_counter()
        faces = view.detect([mirrored if mirror else rgb])[0]
        found[scale, mirror] = (unflip(faces) if mirror else faces, time.perf_counter() - start)
    return found


def plans() -> dict[str, Callable[[dict], list[View]]]:
    def fixed(views: list[View]):
        return lambda found: views

    def if_small(extra: list[View]):
        return lambda found: [BASE, MIRROR] + (extra if ZOOM.wanted(found[BASE][0]) else [])

    return {
        "none": fixed([BASE]),
        "flip": fixed([BASE, MIRROR]),
        "flip + 1.5x": fixed([BASE, MIRROR, (1.5, False)]),
        "flip + 2x": fixed([BASE, MIRROR, (2.0, False)]),
        "flip + 1.5x mirrored too": fixed([BASE, MIRROR, (1.5, False), (1.5, True)]),
        "flip + 2x mirrored too": fixed([BASE, MIRROR, (2.0, False), (2.0, True)]),
        "flip + 1.5x + 2x": fixed([BASE, MIRROR, (1.5, False), (2.0, False)]),
        "flip, 2x if small": if_small([(2.0, False)]),
        "flip, 1.5x + 2x if small": if_small([(1.5, False), (2.0, False)]),
        "flip, 2x mirrored too if small": if_small([(2.0, False), (2.0, True)]),
    }


def precision_counts(faces: FaceDetections, annotated_xywh: np.ndarray, threshold: float = 0.5) -> tuple[int, int]:
    """(faces scoring above threshold on an annotated face, faces scoring above threshold)."""
    kept = faces.boxes[faces.scores > threshold].astype(np.float64)
    if not len(kept) or not len(annotated_xywh):
        return 0, len(kept)
    annotated = np.column_stack([annotated_xywh[:, :2], annotated_xywh[:, :2] + annotated_xywh[:, 2:]])
    return int((box_iou(kept, annotated).max(axis=1) >= 0.5).sum()), len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", type=Path, help="'facelocal export onnx' of the weights")
    parser.add_argument("--images", type=Path, help=f"default: {DEFAULT_VAL_IMAGES} in $FACELOCAL_DATA")
    parser.add_argument("--gt", type=Path, help=f"default: {DEFAULT_GROUND_TRUTH} in $FACELOCAL_DATA")
    parser.add_argument("--limit", type=int, help="only every k-th image, k chosen to leave about N")
    parser.add_argument(
        "--cache", type=Path, help="per-view detections and times: read from this pickle if it exists, else written"
    )
    args = parser.parse_args()
    if args.onnx is None and not (args.cache and args.cache.exists()):
        parser.error("--onnx is needed unless --cache names an existing file")
    ground_truth = load_ground_truth(resolve_data(args.gt, DEFAULT_GROUND_TRUTH, "--gt"))
    if args.cache and args.cache.exists():
        found = pickle.loads(args.cache.read_bytes())
    else:
        detector = Detector.from_onnx(args.onnx, postprocess=EVAL_POSTPROCESS)
        paths = sorted(resolve_data(args.images, DEFAULT_VAL_IMAGES, "--images").glob("*/*.jpg"))
        paths = paths[:: max(1, len(paths) // args.limit)] if args.limit else paths
        found = {f"{p.parent.name}/{p.stem}": run_views(detector, load_image(p)) for p in paths}
        if args.cache:
            args.cache.write_bytes(pickle.dumps(found))
    for scoring in SCORINGS:
        print_table(found, ground_truth, scoring)


def print_table(found: dict, ground_truth: dict, scoring: str) -> None:
    """One markdown row per plan, its views voted with ``box_voting(agreement=SCORINGS[scoring](views))``."""
    single = sum(views[BASE][1] for views in found.values())
    threshold = EVAL_POSTPROCESS.score_threshold
    print(f"\nvoted score: {scoring}")
    print("| plan | Easy | Medium | Hard | time / none | views per image | precision at 0.5 (faces) |")
    print("|---|---|---|---|---|---|---|")
    for name, choose in plans().items():
        predictions, seconds, views_run, hits, returned = {}, 0.0, 0, 0, 0
        for key, views in found.items():
            chosen = choose(views)
            faces = [views[view][0] for view in chosen]
            agreement = SCORINGS[scoring](chosen)
            voted = faces[0] if len(faces) == 1 else box_voting(faces, VOTE_IOU, 750, agreement, threshold)
            predictions[key] = detections_to_xywhs(voted)
            seconds += sum(views[view][1] for view in chosen)
            views_run += len(chosen)
            hit, count = precision_counts(voted, ground_truth[key].boxes)
            hits, returned = hits + hit, returned + count
        ap = {setting: 100 * r.ap for setting, r in evaluate(predictions, ground_truth).settings.items()}
        print(
            f"| {name} | {ap['easy']:.2f} | {ap['medium']:.2f} | {ap['hard']:.2f} | {seconds / single:.2f}x | "
            f"{views_run / len(found):.2f} | {hits / max(1, returned):.3f} ({returned}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
