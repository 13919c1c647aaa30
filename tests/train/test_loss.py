"""MultiBoxLoss: OHEM selection, a perfect prediction, and which anchors each term sees."""

from __future__ import annotations

import pytest
import torch

from facelocal.anchors import generate_anchors
from facelocal.codec import encode_boxes, encode_landmarks
from facelocal.config import get_config
from facelocal.data.dataset import TrainBatch
from facelocal.models.retinaface import HeadOutputs
from facelocal.training.loss import LossConfig, MultiBoxLoss, hard_negative_mask
from facelocal.training.matcher import POSITIVE, match_anchors

CONFIG = get_config("mobilenet0.25")
SIZE = 160


def test_ohem_takes_exactly_three_negatives_per_positive_by_loss():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.3, 0.8, 0.2, 0.0]])
    negatives = torch.tensor([[True, True, True, True, True, False, True, True]])
    # One positive elsewhere -> 3 negatives: the highest-loss ones, never the non-negative 0.8.
    chosen = hard_negative_mask(scores, negatives, torch.tensor([3]))
    assert chosen[0].nonzero().flatten().tolist() == [1, 2, 3]
    # Capped by the negatives available.
    assert hard_negative_mask(scores, negatives, torch.tensor([30])).sum().item() == 7


def test_ohem_counts_per_image_with_ties():
    scores = torch.zeros(3, 100)  # all tied: the count must still be exact
    negatives = torch.ones(3, 100, dtype=torch.bool)
    negatives[2, 10:] = False
    chosen = hard_negative_mask(scores, negatives, torch.tensor([6, 0, 60]))
    assert chosen.sum(dim=1).tolist() == [6, 0, 10]


def make_batch() -> TrainBatch:
    """Two images: three faces with landmarks, and one face without (plus a padding slot)."""
    boxes = torch.tensor(
        [[[20, 20, 52, 60], [80, 30, 100, 52], [60, 90, 140, 150]], [[30, 40, 70, 90], [0, 0, 0, 0], [0, 0, 0, 0]]],
        dtype=torch.float32,
    )
    centres = (boxes[..., :2] + boxes[..., 2:]) / 2
    size = boxes[..., 2:] - boxes[..., :2]
    offsets = torch.tensor([[-0.2, -0.1], [0.2, -0.1], [0.0, 0.05], [-0.15, 0.2], [0.15, 0.2]])
    landmarks = centres[:, :, None] + offsets * size[:, :, None]
    return TrainBatch(
        images=torch.zeros(2, 3, SIZE, SIZE),
        boxes=boxes,
        landmarks=landmarks,
        has_landmarks=torch.tensor([[True, True, True], [False, False, False]]),
        valid=torch.tensor([[True, True, True], [True, False, False]]),
    )


def perfect_outputs(criterion: MultiBoxLoss, batch: TrainBatch) -> HeadOutputs:
    """Head outputs that encode the matched targets exactly, with +-50 logits."""
    anchors = criterion.anchors
    matches = match_anchors(anchors, batch.boxes, batch.valid, criterion.config.matcher)
    gather = matches.face_index[..., None]
    boxes = encode_boxes(torch.take_along_dim(batch.boxes, gather, dim=1), anchors, CONFIG.variances)
    points = torch.take_along_dim(batch.landmarks.flatten(2), gather, dim=1)
    landmarks = encode_landmarks(points, anchors, CONFIG.variances)
    face = (matches.labels == POSITIVE).float()
    logits = torch.stack([50 * (1 - 2 * face), 50 * (2 * face - 1)], dim=-1)
    return HeadOutputs(bbox=boxes, cls_logits=logits, landmarks=landmarks)


@pytest.fixture
def criterion() -> MultiBoxLoss:
    return MultiBoxLoss(CONFIG, generate_anchors(SIZE, SIZE, CONFIG.levels), LossConfig())


def test_perfect_prediction_has_zero_loss(criterion):
    batch = make_batch()
    terms = criterion(perfect_outputs(criterion, batch), batch)
    assert terms.total.item() < 1e-6
    assert terms.classification.item() < 1e-6 and terms.box.item() < 1e-6 and terms.landmark.item() < 1e-6


def test_each_term_reacts_to_its_own_error(criterion):
    batch = make_batch()
    perfect = perfect_outputs(criterion, batch)
    matches = match_anchors(criterion.anchors, batch.boxes, batch.valid, criterion.config.matcher)
    positive = matches.labels == POSITIVE
    count = positive.sum().item()
    # Shift every box offset by 0.5: smooth-L1 gives 0.5 * 0.5^2 per coordinate, 4 coordinates, per positive.
    shifted = perfect._replace(bbox=perfect.bbox + 0.5)
    terms = criterion(shifted, batch)
    assert terms.box.item() == pytest.approx(4 * 0.125, rel=1e-5)
    assert terms.total.item() == pytest.approx(0.25 * 4 * 0.125, rel=1e-5)
    # Landmarks count only on faces that have them: image 1's anchors are free to predict anything.
    junk = perfect.landmarks.clone()
    junk[1] += 100.0
    assert criterion(perfect._replace(landmarks=junk), batch).landmark.item() < 1e-6
    junk[0, positive[0]] += 0.5
    assert criterion(perfect._replace(landmarks=junk), batch).landmark.item() == pytest.approx(10 * 0.125, rel=1e-5)
    assert 0 < positive[0].sum().item() < count


def test_classification_uses_positives_and_three_times_as_many_hard_negatives(criterion):
    batch = make_batch()
    perfect = perfect_outputs(criterion, batch)
    matches = match_anchors(criterion.anchors, batch.boxes, batch.valid, criterion.config.matcher)
    positive = matches.labels == POSITIVE
    # Every negative predicted with logits (0, 0): CE = ln 2 each; OHEM counts 3 per positive, per image.
    logits = perfect.cls_logits.clone()
    logits[~positive] = 0.0
    terms = criterion(perfect._replace(cls_logits=logits), batch)
    # 3 * P anchors at ln 2 each, divided by the P positives.
    assert terms.classification.item() == pytest.approx(3 * torch.log(torch.tensor(2.0)).item(), rel=1e-5)


def test_dense_model_needs_a_dense_term():
    from dataclasses import replace

    dense = replace(CONFIG, dense=True)
    with pytest.raises(ValueError, match="dense"):
        MultiBoxLoss(dense, generate_anchors(SIZE, SIZE, dense.levels))
    criterion = MultiBoxLoss(dense, generate_anchors(SIZE, SIZE, dense.levels), dense_term=lambda *_: torch.tensor(2.0))
    batch = make_batch()
    terms = criterion(perfect_outputs(criterion, batch), batch)
    assert terms.dense.item() == 2.0 and terms.total.item() == pytest.approx(0.01 * 2.0)
