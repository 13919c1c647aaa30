"""Assign anchors to ground-truth faces by IoU, for a whole batch at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1


@dataclass(frozen=True)
class MatcherConfig:
    """IoU thresholds of anchor matching.

    An anchor is positive when its best IoU with a face exceeds ``positive_iou``, negative below
    ``negative_iou`` and ignored in between (the paper: 0.5 and 0.3; the public port uses 0.35 for both).
    Each face also claims its best anchor when that anchor overlaps it by at least ``forced_min_iou``
    (the public port's 0.2 keeps faces no anchor fits from producing wild regression targets; 0 forces all).
    """

    positive_iou: float = 0.5
    negative_iou: float = 0.3
    forced_min_iou: float = 0.2

    def __post_init__(self) -> None:
        if self.negative_iou > self.positive_iou:
            raise ValueError("negative_iou must not exceed positive_iou")


class Matches(NamedTuple):
    """labels: ``(B, A)`` int64 POSITIVE / NEGATIVE / IGNORED; face_index: ``(B, A)`` int64 index into the
    batch's ``G`` faces of the face each anchor overlaps most (meaningful for positives)."""

    labels: torch.Tensor
    face_index: torch.Tensor


def anchors_to_xyxy(anchors: torch.Tensor) -> torch.Tensor:
    """``(A, 4)`` ``(cx, cy, w, h)`` anchors to ``(A, 4)`` xyxy boxes."""
    return torch.cat([anchors[:, :2] - anchors[:, 2:] / 2, anchors[:, :2] + anchors[:, 2:] / 2], dim=1)


def pairwise_iou(boxes: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """IoU of ``(A, 4)`` xyxy boxes with ``(B, G, 4)`` xyxy faces: ``(B, A, G)``."""
    top_left = torch.maximum(boxes[None, :, None, :2], faces[:, None, :, :2])
    bottom_right = torch.minimum(boxes[None, :, None, 2:], faces[:, None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    box_area = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(dim=-1)
    face_area = (faces[..., 2:] - faces[..., :2]).clamp(min=0).prod(dim=-1)
    union = box_area[None, :, None] + face_area[:, None, :] - inter
    return inter / union.clamp(min=1e-9)


def match_anchors(
    anchors: torch.Tensor, boxes: torch.Tensor, valid: torch.Tensor, config: MatcherConfig = MatcherConfig()
) -> Matches:
    """Label every anchor of every image.

    Args:
        anchors: ``(A, 4)`` ``(cx, cy, w, h)`` pixels.
        boxes: ``(B, G, 4)`` xyxy pixels of the faces, padded.
        valid: ``(B, G)`` bool, false for padding.
    """
    iou = pairwise_iou(anchors_to_xyxy(anchors), boxes)
    # Padding must never win a max, on either axis.
    iou = iou.masked_fill(~valid[:, None, :], -1.0)
    best_iou, face_index = iou.max(dim=2)
    labels = torch.full_like(face_index, IGNORED)
    labels[best_iou > config.positive_iou] = POSITIVE
    labels[best_iou < config.negative_iou] = NEGATIVE

    forced_iou, forced_anchor = iou.max(dim=1)  # (B, G): each face's best anchor
    claim = valid & (forced_iou >= config.forced_min_iou)
    image_index, face_slot = torch.nonzero(claim, as_tuple=True)
    anchor_index = forced_anchor[image_index, face_slot]
    labels[image_index, anchor_index] = POSITIVE
    face_index[image_index, anchor_index] = face_slot
    return Matches(labels, face_index)
