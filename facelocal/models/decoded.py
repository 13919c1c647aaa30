"""RetinaFace with its anchor decode attached: the graph that inference and ONNX export run."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facelocal.anchors import anchors_for
from facelocal.codec import decode_boxes, decode_landmarks
from facelocal.models.retinaface import RetinaFace


class DecodedRetinaFace(nn.Module):
    """Wraps :class:`RetinaFace` so that it returns faces in input-canvas pixels.

    ``forward`` maps ``(B, 3, H, W)`` BGR pixels (the uint8 canvas of :mod:`facelocal.contract`) to

    * ``boxes``: ``(B, A, 4)`` xyxy pixels,
    * ``scores``: ``(B, A)`` face probability,
    * ``landmarks``: ``(B, A, 2 * L)`` interleaved ``(x, y)`` pixels.

    With ``top_k`` set, only the ``top_k`` highest-scoring anchors are returned, sorted by score,
    so that a remote server ships kilobytes instead of every anchor.
    """

    def __init__(self, model: RetinaFace, top_k: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.top_k = top_k

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        config = self.model.config
        heads = self.model(images)
        # The network's float type (float32, or half when the model is), on the input's device: never the uint8 input's.
        anchors = anchors_for(images.shape[2], images.shape[3], config.levels).to(self.model.pixel_mean)
        boxes = decode_boxes(heads.bbox, anchors, config.variances)
        scores = F.softmax(heads.cls_logits, dim=-1)[..., 1]
        landmarks = decode_landmarks(heads.landmarks, anchors, config.variances)
        if self.top_k is not None:
            k = min(self.top_k, scores.shape[1])
            scores, index = torch.topk(scores, k, dim=1)
            boxes = torch.gather(boxes, 1, index.unsqueeze(-1).expand(-1, -1, boxes.shape[-1]))
            landmarks = torch.gather(landmarks, 1, index.unsqueeze(-1).expand(-1, -1, landmarks.shape[-1]))
        return boxes, scores, landmarks
