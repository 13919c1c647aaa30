#!/usr/bin/env python
"""Candidate test-time augmentation plans on the WIDER FACE val sample: AP, time and precision at score 0.5.

Each image is run once per view (the original size, its mirror, 1.5x and 2x up with and without the mirror,
the long side capped at 2000 px as in :class:`facelocal.tta_ops.MultiScalePlan`), each view timed on its own;
a plan is then a choice of views per image, voted as :class:`facelocal.tta.TTAPlan` votes (box voting at IoU
0.4, the cluster scored by its best score or by the views' mean, see ``box_voting``), its time the sum of its
views' times. So every plan is scored on the same detections, and the time ratios
come from one run. "if small" plans add their upscales only to images whose first pass found a face scoring at
least 0.3 with a shorter side under 24 px. Precision at 0.5 is the share of faces scoring at least 0.5 that
overlap an annotated face (any, IoU >= 0.5): what the API returns at its default threshold.

    python scripts/tta_plans.py --onnx model.onnx [--images DIR] [--gt DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facelocal.config import EVAL_POSTPROCESS
from facelocal.detections import FaceDetections
from facelocal.detector import Detector
from facelocal.evaluation.wider_txt import detections_to_xywhs
from facelocal.evaluation.widerface import evaluate, load_ground_truth
from facelocal.imageio import load_image
from facelocal.postprocess import box_iou
from facelocal.preprocess import ResizePolicy
from facelocal.tta import VOTE_IOU
from facelocal.tta_ops import box_voting, flip_image, unflip

View = tuple[float, bool]  # (upscale, mirrored)
BASE, MIRROR = (1.0, False), (1.0, True)
VIEWS: tuple[View, ...] = (BASE, MIRROR, (1.5, False), (1.5, True), (2.0, False), (2.0, True))
MAX_LONG_SIDE = 2000
SMALL_SIDE, SMALL_SCORE = 24.0, 0.3


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


def has_small_faces(faces: FaceDetections) -> bool:
    sides = np.minimum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1])
    return bool(np.any((faces.scores >= SMALL_SCORE) & (sides < SMALL_SIDE)))


def plans() -> dict[str, Callable[[dict], list[View]]]:
    def fixed(views: list[View]):
        return lambda found: views

    def if_small(extra: list[View]):
        return lambda found: [BASE, MIRROR] + (extra if has_small_faces(found[BASE][0]) else [])

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
    """(faces scoring >= threshold on an annotated face, faces scoring >= threshold)."""
    kept = faces.boxes[faces.scores >= threshold].astype(np.float64)
    if not len(kept) or not len(annotated_xywh):
        return 0, len(kept)
    annotated = np.column_stack([annotated_xywh[:, :2], annotated_xywh[:, :2] + annotated_xywh[:, 2:]])
    return int((box_iou(kept, annotated).max(axis=1) >= 0.5).sum()), len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", type=Path, required=True, help="'facelocal export onnx' of the weights")
    parser.add_argument("--images", type=Path, default=Path("../shared/data/widerface/val_sample/images"))
    parser.add_argument("--gt", type=Path, default=Path("../shared/data/widerface/ground_truth"))
    parser.add_argument("--limit", type=int, help="only every k-th image, k chosen to leave about N")
    args = parser.parse_args()
    ground_truth = load_ground_truth(args.gt)
    detector = Detector.from_onnx(args.onnx, postprocess=EVAL_POSTPROCESS)
    paths = sorted(args.images.glob("*/*.jpg"))
    paths = paths[:: max(1, len(paths) // args.limit)] if args.limit else paths
    found = {f"{p.parent.name}/{p.stem}": run_views(detector, load_image(p)) for p in paths}
    for scoring in ("max", "view_mean"):
        print_table(found, ground_truth, scoring)


def print_table(found: dict, ground_truth: dict, scoring: str) -> None:
    """One markdown row per plan, its views voted with ``box_voting(score=scoring)``."""
    single = sum(views[BASE][1] for views in found.values())
    print(f"\nvoted score: {scoring}")
    print("| plan | Easy | Medium | Hard | time / none | views per image | precision at 0.5 (faces) |")
    print("|---|---|---|---|---|---|---|")
    for name, choose in plans().items():
        predictions, seconds, views_run, hits, returned = {}, 0.0, 0, 0, 0
        for key, views in found.items():
            chosen = choose(views)
            faces = [views[view][0] for view in chosen]
            voted = faces[0] if len(faces) == 1 else box_voting(faces, VOTE_IOU, 750, scoring)
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
