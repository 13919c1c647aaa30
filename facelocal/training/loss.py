"""RetinaFace's multi-task loss (paper eq. 1) with online hard example mining, vectorised over the batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F

from facelocal.codec import encode_boxes, encode_landmarks
from facelocal.config import ModelConfig
from facelocal.data.dataset import TrainBatch
from facelocal.models.retinaface import HeadOutputs
from facelocal.training.matcher import NEGATIVE, POSITIVE, MatcherConfig, Matches, match_anchors


@dataclass(frozen=True)
class LossConfig:
    """Weights of eq. 1 (box lambda1 = 0.25, landmarks lambda2 = 0.1, dense lambda3 = 0.01), the OHEM ratio of
    negatives to positives, and the anchor matcher."""

    box_weight: float = 0.25
    landmark_weight: float = 0.1
    dense_weight: float = 0.01
    negatives_per_positive: int = 3
    matcher: MatcherConfig = field(default_factory=MatcherConfig)


class LossTerms(NamedTuple):
    """Scalar tensors: ``total`` is the weighted sum that is optimised; the others are unweighted."""

    total: torch.Tensor
    classification: torch.Tensor
    box: torch.Tensor
    landmark: torch.Tensor
    dense: torch.Tensor


# The dense (mesh rendering) term of the paper: given the head outputs, the batch and the matches, returns a
# scalar. The networks here have no dense branch, so there is no built-in implementation.
DenseTerm = Callable[[HeadOutputs, TrainBatch, Matches], torch.Tensor]


def hard_negative_mask(scores: torch.Tensor, negatives: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Pick the ``counts[b]`` highest-``scores`` anchors among ``negatives`` in each image.

    scores: ``(B, A)`` float; negatives: ``(B, A)`` bool; counts: ``(B,)`` int. Returns ``(B, A)`` bool with
    exactly ``min(counts[b], negatives[b].sum())`` anchors set per row.
    """
    ranked = scores.masked_fill(~negatives, float("-inf"))
    order = ranked.argsort(dim=1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    counts = torch.minimum(counts, negatives.sum(dim=1))
    return negatives & (rank < counts[:, None])


class MultiBoxLoss(torch.nn.Module):
    """Softmax cross-entropy over positives and OHEM-selected negatives, smooth-L1 on box offsets of positives
    and on landmark offsets of positives whose face has landmarks, plus the dense term when the model has one.

    Each term is normalised by its number of contributing anchors in the batch, so the weights of eq. 1 apply
    directly. Targets are encoded with :mod:`facelocal.codec` in pixels against ``anchors`` ``(A, 4)``.
    """

    anchors: torch.Tensor  # (A, 4), a buffer

    def __init__(
        self,
        model_config: ModelConfig,
        anchors: torch.Tensor,
        config: LossConfig = LossConfig(),
        dense_term: DenseTerm | None = None,
    ) -> None:
        super().__init__()
        if model_config.dense and dense_term is None:
            raise ValueError(f"{model_config.name} has a dense branch: pass its dense_term to the loss")
        self.model_config = model_config
        self.config = config
        self.dense_term = dense_term
        self.register_buffer("anchors", anchors, persistent=False)

    def forward(self, outputs: HeadOutputs, batch: TrainBatch) -> LossTerms:
        anchors, variances = self.anchors, self.model_config.variances
        matches = match_anchors(anchors, batch.boxes, batch.valid, self.config.matcher)
        positive = matches.labels == POSITIVE
        num_positive = positive.sum().clamp(min=1)

        # Mixed precision: the heads may come out in half precision; the loss is always float32.
        logits = outputs.cls_logits.float()
        cross_entropy = F.cross_entropy(logits.flatten(0, 1), positive.long().flatten(), reduction="none")
        cross_entropy = cross_entropy.view_as(positive)
        wanted = positive.sum(dim=1) * self.config.negatives_per_positive
        hard = hard_negative_mask(cross_entropy.detach(), matches.labels == NEGATIVE, wanted)
        classification = cross_entropy[positive | hard].sum() / num_positive

        gather = matches.face_index
        face_boxes = torch.take_along_dim(batch.boxes, gather[..., None], dim=1)
        box_targets = encode_boxes(face_boxes, anchors, variances)
        box = F.smooth_l1_loss(outputs.bbox.float()[positive], box_targets[positive], reduction="sum") / num_positive

        with_landmarks = positive & torch.take_along_dim(batch.has_landmarks, gather, dim=1)
        face_points = torch.take_along_dim(batch.landmarks.flatten(2), gather[..., None], dim=1)
        landmark_targets = encode_landmarks(face_points, anchors, variances)
        landmark = F.smooth_l1_loss(
            outputs.landmarks.float()[with_landmarks], landmark_targets[with_landmarks], reduction="sum"
        ) / with_landmarks.sum().clamp(min=1)

        dense = self.dense_term(outputs, batch, matches) if self.dense_term is not None else logits.new_zeros(())
        total = (
            classification
            + self.config.box_weight * box
            + self.config.landmark_weight * landmark
            + self.config.dense_weight * dense
        )
        return LossTerms(total, classification, box, landmark, dense)
