"""Anchor matching on hand-made boxes."""

from __future__ import annotations

import torch

from facelocal.training.matcher import IGNORED, NEGATIVE, POSITIVE, MatcherConfig, match_anchors, pairwise_iou


def cxcywh(*boxes):
    return torch.tensor(boxes, dtype=torch.float32)


def test_pairwise_iou_values():
    anchors = torch.tensor([[0, 0, 10, 10], [5, 0, 15, 10]], dtype=torch.float32)
    faces = torch.tensor([[[0, 0, 10, 10], [0, 0, 5, 10]]], dtype=torch.float32)
    iou = pairwise_iou(anchors, faces)
    assert iou.shape == (1, 2, 2)
    torch.testing.assert_close(iou[0], torch.tensor([[1.0, 0.5], [1 / 3, 0.0]]))


def test_positive_negative_ignored_and_padding():
    # Face 0 is the 10x10 box at the origin; anchors are 10x10 boxes shifted right by a few pixels.
    # IoU of a shift s is (10 - s) / (10 + s): s=0 -> 1.0, s=2 -> 0.667, s=4 -> 0.43, s=6 -> 0.25, s=20 -> 0.
    anchors = cxcywh([5, 5, 10, 10], [7, 5, 10, 10], [9, 5, 10, 10], [11, 5, 10, 10], [25, 5, 10, 10])
    boxes = torch.tensor([[[0, 0, 10, 10], [0, 0, 0, 0]]], dtype=torch.float32)
    valid = torch.tensor([[True, False]])
    matches = match_anchors(anchors, boxes, valid, MatcherConfig(positive_iou=0.5, negative_iou=0.3))
    assert matches.labels[0].tolist() == [POSITIVE, POSITIVE, IGNORED, NEGATIVE, NEGATIVE]
    assert matches.face_index[0, :2].tolist() == [0, 0]
    # The public port's single threshold 0.35: nothing is ignored.
    public = match_anchors(anchors, boxes, valid, MatcherConfig(positive_iou=0.35, negative_iou=0.35))
    assert public.labels[0].tolist() == [POSITIVE, POSITIVE, POSITIVE, NEGATIVE, NEGATIVE]


def test_each_face_claims_its_best_anchor():
    # Face 1 (12x12 at x=40) overlaps its best anchor only by IoU 0.36 (< 0.5): forced positive.
    # Face 2 (a 2x2 speck) overlaps its best anchor by 0.04 (< forced_min_iou 0.2): left unmatched.
    anchors = cxcywh([5, 5, 10, 10], [50, 6, 20, 20], [80, 5, 10, 10])
    boxes = torch.tensor([[[0, 0, 10, 10], [40, 0, 52, 12], [79, 4, 81, 6]]], dtype=torch.float32)
    valid = torch.ones(1, 3, dtype=torch.bool)
    iou = pairwise_iou(torch.tensor([[40.0, -4, 60, 16]]), boxes[:, 1:2])
    assert 0.3 < iou.item() < 0.5
    matches = match_anchors(anchors, boxes, valid)
    assert matches.labels[0].tolist() == [POSITIVE, POSITIVE, NEGATIVE]
    assert matches.face_index[0, :2].tolist() == [0, 1]
    forced_all = match_anchors(anchors, boxes, valid, MatcherConfig(forced_min_iou=0.0))
    assert forced_all.labels[0].tolist() == [POSITIVE, POSITIVE, POSITIVE]
    assert forced_all.face_index[0].tolist() == [0, 1, 2]


def test_forcing_overrides_a_better_face_and_batches_are_independent():
    # Anchor 0 overlaps face 0 best (IoU 1), but face 1's only decent anchor is anchor 0 too: the forced
    # assignment wins, as in the public port.
    anchors = cxcywh([5, 5, 10, 10], [100, 100, 10, 10])
    boxes = torch.tensor([[[0, 0, 10, 10], [0, 0, 10, 14]], [[95, 95, 105, 105], [0, 0, 0, 0]]], dtype=torch.float32)
    valid = torch.tensor([[True, True], [True, False]])
    matches = match_anchors(anchors, boxes, valid)
    assert matches.labels.tolist() == [[POSITIVE, NEGATIVE], [NEGATIVE, POSITIVE]]
    assert matches.face_index[0, 0].item() in (0, 1)
    assert matches.face_index[1, 1].item() == 0


def test_image_without_faces_is_all_negative():
    anchors = cxcywh([5, 5, 10, 10], [15, 5, 10, 10])
    matches = match_anchors(anchors, torch.zeros(1, 1, 4), torch.zeros(1, 1, dtype=torch.bool))
    assert matches.labels.tolist() == [[NEGATIVE, NEGATIVE]]
