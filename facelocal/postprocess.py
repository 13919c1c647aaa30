"""Score threshold, top-k, NMS and mapping back to image pixels (numpy only)."""

from __future__ import annotations

import numpy as np

from facelocal.config import PostprocessConfig
from facelocal.detections import FaceDetections
from facelocal.preprocess import Placement


def box_area(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` xyxy boxes to ``(N,)`` areas."""
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes: ``(N, M)``."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, plus_one: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression.

    Returns indices of the kept boxes, by descending score. A box is dropped when its IoU with a kept,
    higher-scoring box exceeds ``iou_threshold``. Each step suppresses against all remaining boxes at once.
    With ``plus_one`` (the public reference's convention) a box spans ``x2 - x1 + 1`` pixels, in areas and
    overlaps alike.
    """
    order = np.argsort(-scores, kind="stable")
    boxes = boxes[order]
    if plus_one:
        boxes = boxes + np.array([0, 0, 1, 1], boxes.dtype)
    areas = box_area(boxes)
    alive = np.ones(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if not alive[i]:
            continue
        keep.append(i)
        rest = np.nonzero(alive[i + 1 :])[0] + i + 1
        if rest.size == 0:
            break
        top_left = np.maximum(boxes[i, :2], boxes[rest, :2])
        bottom_right = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        alive[rest[iou > iou_threshold]] = False
    return order[np.asarray(keep, dtype=np.int64)]


def shows_the_image(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Which ``(N, 4)`` image-pixel boxes still span at least one pixel each way once clipped to the image.

    The others are no face: boxes of zero or negative size, and boxes lying wholly in the letterbox padding
    beyond the image (a face there would be clipped to a line or a point on the image's edge).
    """
    sides = np.minimum(boxes[:, 2:], (width, height)) - np.maximum(boxes[:, :2], 0)
    return np.all(sides >= 1.0, axis=1)


def select_faces(
    boxes: np.ndarray,
    scores: np.ndarray,
    landmarks: np.ndarray,
    placement: Placement,
    width: int,
    height: int,
    config: PostprocessConfig,
) -> FaceDetections:
    """Turn one image's decoded network output into its faces.

    Args:
        boxes: ``(A, 4)`` xyxy canvas pixels; scores: ``(A,)``; landmarks: ``(A, 2L)`` canvas pixels.
        placement: how the image was put on the canvas; width, height: the original image size.

    Keeps scores above the threshold, the ``pre_nms_top_k`` best, drops boxes that show no pixel of the image
    (see :func:`shows_the_image`), runs NMS, keeps ``post_nms_top_k``, then maps to original-image pixels and
    (unless ``clip_boxes`` is off) clips boxes to the image.
    """
    candidates = np.nonzero(scores > config.score_threshold)[0]
    candidates = candidates[np.argsort(-scores[candidates], kind="stable")[: config.pre_nms_top_k]]
    candidates = candidates[shows_the_image(placement.to_image(boxes[candidates].astype(np.float32)), width, height)]
    kept = candidates[nms(boxes[candidates], scores[candidates], config.nms_threshold, config.plus_one)]
    kept = kept[: config.post_nms_top_k]
    out_boxes = placement.to_image(boxes[kept].astype(np.float32))
    if config.clip_boxes:
        np.clip(out_boxes[:, 0::2], 0, width, out=out_boxes[:, 0::2])
        np.clip(out_boxes[:, 1::2], 0, height, out=out_boxes[:, 1::2])
    out_landmarks = placement.to_image(landmarks[kept].astype(np.float32)).reshape(
        len(kept), landmarks.shape[-1] // 2, 2
    )
    return FaceDetections(out_boxes, scores[kept].astype(np.float32), out_landmarks, width, height)
