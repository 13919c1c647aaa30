"""Box and landmark encode/decode are inverse to each other."""

from __future__ import annotations

import pytest
import torch

from facelocal.codec import decode_boxes, decode_landmarks, encode_boxes, encode_landmarks


def _random_anchors(n: int, generator: torch.Generator) -> torch.Tensor:
    centres = torch.rand(n, 2, generator=generator) * 600
    sizes = torch.rand(n, 1, generator=generator) * 200 + 8
    return torch.cat([centres, sizes.expand(n, 2)], dim=1)


def test_box_round_trip():
    generator = torch.Generator().manual_seed(0)
    anchors = _random_anchors(500, generator)
    top_left = torch.rand(2, 500, 2, generator=generator) * 500
    boxes = torch.cat([top_left, top_left + torch.rand(2, 500, 2, generator=generator) * 300 + 1], dim=-1)
    codes = encode_boxes(boxes, anchors, (0.1, 0.2))
    torch.testing.assert_close(decode_boxes(codes, anchors, (0.1, 0.2)), boxes, atol=1e-3, rtol=1e-5)


def test_landmark_round_trip():
    generator = torch.Generator().manual_seed(1)
    anchors = _random_anchors(300, generator)
    landmarks = torch.rand(3, 300, 10, generator=generator) * 640
    codes = encode_landmarks(landmarks, anchors, (0.1, 0.2))
    torch.testing.assert_close(decode_landmarks(codes, anchors, (0.1, 0.2)), landmarks, atol=1e-3, rtol=1e-5)


def test_zero_offsets_decode_to_the_anchor():
    anchors = torch.tensor([[100.0, 50.0, 32.0, 32.0]])
    assert decode_boxes(torch.zeros(1, 4), anchors, (0.1, 0.2)).tolist() == [[84.0, 34.0, 116.0, 66.0]]
    assert decode_landmarks(torch.zeros(1, 10), anchors, (0.1, 0.2)).tolist() == [[100.0, 50.0] * 5]
    # one unit of centre offset moves by variance * anchor size
    moved = decode_boxes(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), anchors, (0.1, 0.2))
    assert moved[0, 0].item() == pytest.approx(84.0 + 3.2)
