"""The RetinaFace network: backbone, FPN, one SSH per level and shared-per-level 1x1 heads."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from facelocal.config import ModelConfig
from facelocal.contract import BGR_MEAN
from facelocal.models.heads import head_list
from facelocal.models.mobilenet import MobileNetV1
from facelocal.models.neck import FPN, SSH
from facelocal.models.resnet import ResNet50


class HeadOutputs(NamedTuple):
    """Raw per-anchor predictions, anchors of all levels concatenated (finest level first).

    bbox: ``(B, A, 4)`` box offsets; cls_logits: ``(B, A, 2)`` background/face logits;
    landmarks: ``(B, A, 2 * num_landmarks)`` landmark offsets.
    """

    bbox: torch.Tensor
    cls_logits: torch.Tensor
    landmarks: torch.Tensor


def _make_backbone(config: ModelConfig) -> MobileNetV1 | ResNet50:
    if config.backbone == "mobilenet0.25":
        return MobileNetV1(config.leaky_slope)
    if config.backbone == "resnet50":
        return ResNet50()
    raise ValueError(f"unknown backbone {config.backbone!r}")


class RetinaFace(nn.Module):
    """RetinaFace after Deng et al. 2019, with the module names of the public PyTorch port.

    ``forward`` maps BGR pixels ``(B, 3, H, W)`` (uint8, or float in 0..255) to :class:`HeadOutputs`; it
    subtracts the training mean itself, so the exported graph takes the uint8 canvas of the contract.
    """

    pixel_mean: torch.Tensor  # (1, 3, 1, 1) BGR, a buffer

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.body = _make_backbone(config)
        # Levels above the backbone's last stage (the paper's P6) come from a strided conv on that stage.
        self.stage_indices = [p for p in config.pyramid_indices if p in self.body.stage_channels]
        extra = len(config.levels) - len(self.stage_indices)
        if extra not in (0, 1) or config.pyramid_indices[: len(self.stage_indices)] != tuple(self.stage_indices):
            raise ValueError(f"{config.backbone} cannot provide levels {[lv.name for lv in config.levels]}")
        in_channels = [self.body.stage_channels[p] for p in self.stage_indices]
        self.fpn = FPN(in_channels, config.out_channels, config.leaky_slope, extra_top_level=extra == 1)
        for i in range(1, len(config.levels) + 1):
            self.add_module(f"ssh{i}", SSH(config.out_channels, config.out_channels, config.leaky_slope))
        levels, channels, anchors = len(config.levels), config.out_channels, config.anchors_per_location
        self.ClassHead = head_list(levels, channels, anchors, 2)
        self.BboxHead = head_list(levels, channels, anchors, 4)
        self.LandmarkHead = head_list(levels, channels, anchors, 2 * config.num_landmarks)
        # Not persistent: checkpoints in the public format load strictly, without it.
        self.register_buffer(
            "pixel_mean", torch.tensor(BGR_MEAN, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )

    def forward(self, images: torch.Tensor) -> HeadOutputs:
        stages = self.body(images.to(self.pixel_mean.dtype) - self.pixel_mean)
        pyramid = self.fpn([stages[p] for p in self.stage_indices])
        features = [getattr(self, f"ssh{i}")(level) for i, level in enumerate(pyramid, start=1)]
        return HeadOutputs(
            bbox=torch.cat([head(f) for head, f in zip(self.BboxHead, features, strict=True)], dim=1),
            cls_logits=torch.cat([head(f) for head, f in zip(self.ClassHead, features, strict=True)], dim=1),
            landmarks=torch.cat([head(f) for head, f in zip(self.LandmarkHead, features, strict=True)], dim=1),
        )


def build_model(config: ModelConfig) -> RetinaFace:
    """A randomly initialised network for ``config``."""
    return RetinaFace(config)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint in the public format, or one written by ``facelocal train``.

    Accepts a bare state dict or a dict holding it under ``model`` or ``state_dict``, and strips the
    ``module.`` prefix that ``nn.DataParallel`` adds.
    """
    checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
    for key in ("model", "state_dict"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    prefix = "module."
    return {k.removeprefix(prefix): v for k, v in checkpoint.items()}


def load_pretrained(config: ModelConfig, path: str | Path) -> RetinaFace:
    """Build the network for ``config`` and load ``path`` with ``strict=True``; returns it in eval mode."""
    model = build_model(config)
    model.load_state_dict(read_state_dict(path), strict=True)
    return model.eval()
