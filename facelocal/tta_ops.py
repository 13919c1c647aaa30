"""Test-time augmentation pieces that need no network (numpy only, so the serving side can reuse them):
the horizontal flip and its inverse on detections, the multi-scale plan, and box voting.

Landmarks are ordered left eye, right eye, nose, left mouth, right mouth (see ``facelocal.detections``). Under a
mirror, the subject's left eye lands where a right eye would be, so un-flipping swaps the pairs back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facelocal.detections import FaceDetections, mirror_faces
from facelocal.postprocess import box_iou

PAPER_SHORT_SIDES = (500, 800, 1100, 1400, 1700)


def flip_image(rgb: np.ndarray) -> np.ndarray:
    """The ``(H, W, 3)`` image mirrored left-right (a view, no copy)."""
    return rgb[:, ::-1]


def unflip(detections: FaceDetections) -> FaceDetections:
    """Map detections found on the mirrored image back to the original image.

    Coordinates are continuous (a box spans ``x1..x2``), so a point at ``x`` mirrors to ``width - x``; box
    corners swap, and landmark pairs swap back so that ``left_eye`` is again the subject's left eye.
    """
    boxes, landmarks = mirror_faces(detections.boxes, detections.landmarks, detections.width)
    return FaceDetections(boxes, detections.scores.copy(), landmarks, detections.width, detections.height)


@dataclass(frozen=True)
class MultiScalePlan:
    """Which scales multi-scale testing runs an image at.

    Each target short side gives ``scale = short_side / image short side``, lowered so that the long side stays
    within ``max_long_side``. Scales that would enlarge the image more than ``max_upscale`` times are skipped:
    beyond that, upsampling adds compute but no detail (MobileNet already finds faces of ~10 px at scale 1).
    Scales within 1% of one already planned are merged, since capped targets collapse onto the same size.
    """

    short_sides: tuple[int, ...] = PAPER_SHORT_SIDES
    max_long_side: int = 2000
    max_upscale: float = 2.0

    def long_sides(self, width: int, height: int) -> list[int]:
        """Target long sides in pixels (for ``ResizePolicy("long", S)``), ascending, without repeats."""
        short, long = min(width, height), max(width, height)
        planned: list[float] = []
        for side in self.short_sides:
            scale = min(side / short, self.max_long_side / long)
            if scale > self.max_upscale or any(abs(scale - p) <= 0.01 * p for p in planned):
                continue
            planned.append(scale)
        return sorted({max(1, round(long * s)) for s in planned})


def box_voting(
    detections: Sequence[FaceDetections],
    iou_threshold: float = 0.4,
    max_faces: int = 750,
    agreement: Sequence[int] | None = None,
    min_score: float = 0.0,
) -> FaceDetections:
    """Merge detections of one image from several views by box voting (as the public ``bbox_vote``).

    The union is visited by descending score; the best remaining box and every remaining box with IoU >=
    ``iou_threshold`` to it form a cluster. The cluster becomes one face: boxes and landmarks averaged with the
    scores as weights, the score the cluster's maximum. Unlike the public code (which drops a lone box unless it
    is the last), single-box clusters are kept as they are.

    ``agreement`` puts each view in a group of views that should agree (e.g. a view and its mirror). A cluster
    then scores, for its best group, each of the group's views' best score in the cluster averaged over the
    group (a view that missed the face counts 0): a face seen by one view of a flipped pair scores half, so that
    a threshold means about what it means on one view (the maximum lets every view's false positives through).
    ``[0] * len(detections)`` averages over all the views; None (every view its own group) is the maximum.

    The faces scoring above ``min_score`` come back, the ``max_faces`` best, by descending score. A voted score
    never exceeds its cluster's best, so voting stops at the first cluster led by a score of ``min_score`` or less.
    """
    first = detections[0]
    boxes = np.concatenate([d.boxes for d in detections]).astype(np.float64)
    scores = np.concatenate([d.scores for d in detections]).astype(np.float64)
    point_count = first.landmarks.shape[1] * first.landmarks.shape[2]
    landmarks = np.concatenate([d.landmarks.reshape(len(d), point_count) for d in detections]).astype(np.float64)
    views = np.concatenate([np.full(len(d), index) for index, d in enumerate(detections)])
    groups = np.arange(len(detections)) if agreement is None else np.asarray(agreement)
    group_sizes = np.maximum(np.bincount(groups), 1)  # numbers no view uses are never the best group
    order = np.argsort(-scores, kind="stable")
    boxes, scores, landmarks, views = boxes[order], scores[order], landmarks[order], views[order]
    alive = np.ones(len(scores), bool)
    out_boxes, out_scores, out_landmarks = [], [], []
    for i in range(len(scores)):
        if scores[i] <= min_score:
            break
        if not alive[i]:
            continue
        rest = np.nonzero(alive)[0]
        # A box always joins its own cluster, even one of no area (whose IoU with itself is 0).
        members = rest[(box_iou(boxes[i : i + 1], boxes[rest])[0] >= iou_threshold) | (rest == i)]
        alive[members] = False
        weights = scores[members] / scores[members].sum()
        out_boxes.append(weights @ boxes[members])
        out_landmarks.append(weights @ landmarks[members])
        best = np.zeros(len(detections))
        np.maximum.at(best, views[members], scores[members])
        out_scores.append((np.bincount(groups, weights=best) / group_sizes).max())
    count = len(out_scores)
    voted = FaceDetections(
        np.asarray(out_boxes, np.float32).reshape(count, 4),
        np.asarray(out_scores, np.float32).reshape(count),
        np.asarray(out_landmarks, np.float32).reshape(count, *first.landmarks.shape[1:]),
        first.width,
        first.height,
    )
    # Agreement scores need not fall in the order the clusters were formed.
    ranked = np.argsort(-voted.scores, kind="stable")
    return voted.select(ranked[voted.scores[ranked] > min_score][:max_faces])
