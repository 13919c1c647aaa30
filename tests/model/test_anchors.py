"""Anchor counts, layout and caching."""

from __future__ import annotations

import torch

from facelocal.anchors import anchors_for, cached_anchors, generate_anchors, grid_size
from facelocal.config import get_config


def test_public_configs_give_16800_anchors_at_640():
    for name in ("mobilenet0.25", "mobilenet0.25-1mb", "resnet50"):
        assert generate_anchors(640, 640, get_config(name).levels).shape == (16_800, 4)


def test_paper_layout_gives_102300_anchors_75_percent_on_p2():
    levels = get_config("paper").levels
    total = generate_anchors(640, 640, levels).shape[0]
    on_p2 = generate_anchors(640, 640, levels[:1]).shape[0]
    assert total == 102_300
    assert on_p2 == 76_800
    assert round(on_p2 / total, 2) == 0.75


def test_non_square_grid_and_order():
    level = get_config("mobilenet0.25").levels[0]  # stride 8, sizes 16 and 32
    anchors = generate_anchors(20, 33, (level,))
    rows, cols = grid_size(20, 33, 8)
    assert (rows, cols) == (3, 5)
    assert anchors.shape == (rows * cols * 2, 4)
    # rows ordered (y, x, size): the second anchor shares the first's centre, the third moves one stride right
    assert anchors[0].tolist() == [4.0, 4.0, 16.0, 16.0]
    assert anchors[1].tolist() == [4.0, 4.0, 32.0, 32.0]
    assert anchors[2].tolist() == [12.0, 4.0, 16.0, 16.0]
    assert anchors[cols * 2].tolist() == [4.0, 12.0, 16.0, 16.0]
    assert anchors[-1].tolist() == [36.0, 20.0, 32.0, 32.0]


def test_anchors_are_cached_per_shape():
    levels = get_config("mobilenet0.25").levels
    assert anchors_for(480, 640, levels) is anchors_for(480, 640, levels)
    assert anchors_for(480, 640, levels) is not anchors_for(640, 480, levels)
    assert torch.equal(cached_anchors(480, 640, levels), generate_anchors(480, 640, levels))


def test_tiny_inputs_still_have_one_cell_per_level():
    levels = get_config("mobilenet0.25").levels
    assert generate_anchors(1, 1, levels).shape == (6, 4)
    assert generate_anchors(7, 13, levels).shape == ((1 * 2 + 1 + 1) * 2, 4)
