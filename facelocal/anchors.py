"""Anchor generation for any input size, vectorised and cached per shape."""

from __future__ import annotations

from functools import lru_cache

import torch

from facelocal.config import LevelConfig


def grid_size(height: int, width: int, stride: int) -> tuple[int, int]:
    """Feature-map size of a level: strided 3x3/pad-1 convs round up."""
    return (height + stride - 1) // stride, (width + stride - 1) // stride


def level_anchors(height: int, width: int, level: LevelConfig, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Anchors of one level as ``(h * w * k, 4)`` rows ``(cx, cy, w, h)`` in input pixels, ordered (y, x, k).

    ``height`` and ``width`` may be symbolic during ONNX export: only integer arithmetic and
    ``torch.arange`` touch them.
    """
    rows, cols = grid_size(height, width, level.stride)
    sizes = torch.tensor(level.anchor_sizes, dtype=dtype)
    k = sizes.numel()
    ys = (torch.arange(rows, dtype=dtype) + 0.5) * level.stride
    xs = (torch.arange(cols, dtype=dtype) + 0.5) * level.stride
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    centres = torch.stack([cx, cy], dim=-1).reshape(-1, 1, 2).expand(-1, k, 2)
    extents = sizes.reshape(1, k, 1).expand(centres.shape[0], k, 2)
    return torch.cat([centres, extents], dim=-1).reshape(-1, 4)


def generate_anchors(height: int, width: int, levels: tuple[LevelConfig, ...]) -> torch.Tensor:
    """All anchors for an ``height x width`` input: ``(A, 4)`` ``(cx, cy, w, h)`` pixels, finest level first."""
    return torch.cat([level_anchors(height, width, level) for level in levels], dim=0)


@lru_cache(maxsize=32)
def cached_anchors(height: int, width: int, levels: tuple[LevelConfig, ...]) -> torch.Tensor:
    """:func:`generate_anchors`, memoised per input shape. Treat the result as read-only."""
    return generate_anchors(height, width, levels)


def anchors_for(height, width, levels: tuple[LevelConfig, ...]) -> torch.Tensor:
    """Cached anchors in eager mode; freshly traced ones while exporting, so the graph stays shape-generic."""
    if torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling() or not isinstance(height, int):
        return generate_anchors(height, width, levels)
    return cached_anchors(height, width, levels)
