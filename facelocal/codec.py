"""Box and landmark codec of RetinaFace (SSD-style offsets scaled by variances).

Anchors are ``(A, 4)`` rows ``(cx, cy, w, h)``; boxes are ``(..., A, 4)`` ``(x1, y1, x2, y2)``;
landmarks are ``(..., A, 2 * L)`` interleaved ``(x, y)``. All coordinates share one unit (pixels here).
"""

from __future__ import annotations

import torch


def encode_boxes(boxes: torch.Tensor, anchors: torch.Tensor, variances: tuple[float, float]) -> torch.Tensor:
    """``(..., A, 4)`` xyxy boxes to ``(..., A, 4)`` offsets relative to their anchors."""
    centres = (boxes[..., :2] + boxes[..., 2:]) / 2
    sizes = (boxes[..., 2:] - boxes[..., :2]).clamp(min=1e-6)
    delta_centre = (centres - anchors[:, :2]) / (variances[0] * anchors[:, 2:])
    delta_size = torch.log(sizes / anchors[:, 2:]) / variances[1]
    return torch.cat([delta_centre, delta_size], dim=-1)


def decode_boxes(offsets: torch.Tensor, anchors: torch.Tensor, variances: tuple[float, float]) -> torch.Tensor:
    """Inverse of :func:`encode_boxes`: ``(..., A, 4)`` offsets to ``(..., A, 4)`` xyxy boxes."""
    centres = anchors[:, :2] + offsets[..., :2] * variances[0] * anchors[:, 2:]
    sizes = anchors[:, 2:] * torch.exp(offsets[..., 2:] * variances[1])
    return torch.cat([centres - sizes / 2, centres + sizes / 2], dim=-1)


def encode_landmarks(landmarks: torch.Tensor, anchors: torch.Tensor, variances: tuple[float, float]) -> torch.Tensor:
    """``(..., A, 2L)`` landmark coordinates to ``(..., A, 2L)`` offsets."""
    points = landmarks.unflatten(-1, (-1, 2))
    offsets = (points - anchors[:, None, :2]) / (variances[0] * anchors[:, None, 2:])
    return offsets.flatten(-2)


def decode_landmarks(offsets: torch.Tensor, anchors: torch.Tensor, variances: tuple[float, float]) -> torch.Tensor:
    """Inverse of :func:`encode_landmarks`."""
    points = anchors[:, None, :2] + offsets.unflatten(-1, (-1, 2)) * variances[0] * anchors[:, None, 2:]
    return points.flatten(-2)
