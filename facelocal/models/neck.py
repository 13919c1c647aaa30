"""Feature pyramid (FPN) and SSH context modules, with the public port's module names."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facelocal.models.layers import conv_bn, conv_bn1x1, conv_bn_no_relu


class FPN(nn.Module):
    """Top-down feature pyramid over backbone stages, finest first.

    Laterals are ``output1..outputN`` (1x1), merges after each top-down sum are ``merge1..merge{N-1}`` (3x3).
    With ``extra_top_level`` a 3x3 stride-2 conv on the coarsest backbone stage adds one more level
    (the paper's P6), which takes no part in the top-down path.

    ``forward`` takes a list of ``(B, C_i, H_i, W_i)`` stages and returns a list of ``(B, out, H_i, W_i)`` maps.
    """

    def __init__(self, in_channels: list[int], out_channels: int, leaky: float, extra_top_level: bool = False) -> None:
        super().__init__()
        self.num_laterals = len(in_channels)
        for i, channels in enumerate(in_channels, start=1):
            self.add_module(f"output{i}", conv_bn1x1(channels, out_channels, leaky=leaky))
        for i in range(1, self.num_laterals):
            self.add_module(f"merge{i}", conv_bn(out_channels, out_channels, leaky=leaky))
        self.extra = conv_bn(in_channels[-1], out_channels, stride=2, leaky=leaky) if extra_top_level else None

    def forward(self, stages: list[torch.Tensor]) -> list[torch.Tensor]:
        outputs = [getattr(self, f"output{i}")(stage) for i, stage in enumerate(stages, start=1)]
        for i in range(self.num_laterals - 1, 0, -1):
            coarser = outputs[i]
            finer = outputs[i - 1]
            up = F.interpolate(coarser, size=[finer.size(2), finer.size(3)], mode="nearest")
            outputs[i - 1] = getattr(self, f"merge{i}")(finer + up)
        if self.extra is not None:
            outputs.append(self.extra(stages[-1]))
        return outputs


class SSH(nn.Module):
    """Single Stage Headless context module: parallel 3x3, 5x5 and 7x7 receptive fields (stacked 3x3s).

    Maps ``(B, C, H, W)`` to ``(B, out, H, W)``; half the channels come from the 3x3 branch, a quarter each
    from the 5x5 and 7x7 branches.
    """

    def __init__(self, in_channels: int, out_channels: int, leaky: float) -> None:
        super().__init__()
        if out_channels % 4:
            raise ValueError("SSH output channels must be a multiple of 4")
        quarter = out_channels // 4
        self.conv3X3 = conv_bn_no_relu(in_channels, out_channels // 2)
        self.conv5X5_1 = conv_bn(in_channels, quarter, leaky=leaky)
        self.conv5X5_2 = conv_bn_no_relu(quarter, quarter)
        self.conv7X7_2 = conv_bn(quarter, quarter, leaky=leaky)
        self.conv7x7_3 = conv_bn_no_relu(quarter, quarter)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3 = self.conv3X3(x)
        context = self.conv5X5_1(x)
        branch5 = self.conv5X5_2(context)
        branch7 = self.conv7x7_3(self.conv7X7_2(context))
        return F.relu(torch.cat([branch3, branch5, branch7], dim=1))
