"""1x1 prediction heads, one per pyramid level, flattened to per-anchor rows."""

from __future__ import annotations

import torch
from torch import nn


class Head(nn.Module):
    """A 1x1 conv predicting ``values`` numbers for each of ``num_anchors`` anchors per location.

    Maps ``(B, C, H, W)`` to ``(B, H * W * num_anchors, values)``, rows ordered by (y, x, anchor),
    the same order as :func:`facelocal.anchors.generate_anchors`.
    """

    def __init__(self, in_channels: int, num_anchors: int, values: int) -> None:
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(in_channels, num_anchors * values, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.values)


def head_list(levels: int, in_channels: int, num_anchors: int, values: int) -> nn.ModuleList:
    return nn.ModuleList(Head(in_channels, num_anchors, values) for _ in range(levels))
