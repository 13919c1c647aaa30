"""MobileNet-0.25 backbone (MobileNet v1 at width 0.25), as in the public RetinaFace port."""

from __future__ import annotations

import torch
from torch import nn

from facelocal.models.layers import conv_bn, conv_dw


class MobileNetV1(nn.Module):
    """Three stages with strides 8, 16 and 32; ``leaky`` is the LeakyReLU slope (0 for ReLU).

    ``forward`` maps images ``(B, 3, H, W)`` to ``{3: (B, 64, H/8, W/8), 4: (B, 128, H/16, W/16),
    5: (B, 256, H/32, W/32)}`` (sizes rounded up), keyed by pyramid index.
    """

    stage_channels = {3: 64, 4: 128, 5: 256}

    def __init__(self, leaky: float = 0.1) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            conv_bn(3, 8, 2, leaky),
            conv_dw(8, 16, 1, leaky),
            conv_dw(16, 32, 2, leaky),
            conv_dw(32, 32, 1, leaky),
            conv_dw(32, 64, 2, leaky),
            conv_dw(64, 64, 1, leaky),
        )
        self.stage2 = nn.Sequential(conv_dw(64, 128, 2, leaky), *(conv_dw(128, 128, 1, leaky) for _ in range(5)))
        self.stage3 = nn.Sequential(conv_dw(128, 256, 2, leaky), conv_dw(256, 256, 1, leaky))

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        c3 = self.stage1(x)
        c4 = self.stage2(c3)
        c5 = self.stage3(c4)
        return {3: c3, 4: c4, 5: c5}
