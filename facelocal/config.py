"""Typed model configurations.

Four presets ship with the library:

* ``mobilenet0.25`` and ``resnet50`` match the public PyTorch RetinaFace checkpoints
  (P3-P5, strides 8/16/32, two square anchors per location).
* ``mobilenet0.25-1mb`` is the same network with ReLU activations and anchors [[10,20],[32,64],[128,256]],
  as trained by biubug6/Face-Detector-1MB-with-landmark.
* ``paper`` is the layout of Table 2 in the RetinaFace paper: P2-P6, strides 4-64,
  three scales per level at a step of 2^(1/3), aspect ratio 1:1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Backbone = Literal["mobilenet0.25", "resnet50"]


@dataclass(frozen=True)
class LevelConfig:
    """One pyramid level: its name (``P3``), stride in pixels and square anchor sizes in pixels."""

    name: str
    stride: int
    anchor_sizes: tuple[float, ...]


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a RetinaFace network and decode its outputs.

    Attributes:
        name: preset name, also reported by the service.
        backbone: ``mobilenet0.25`` or ``resnet50``.
        levels: pyramid levels, finest first.
        out_channels: FPN and SSH width.
        variances: box-codec variances (centre, size).
        num_landmarks: landmarks per face (5).
        dense: whether the network has the dense 3D-mesh branch.
        leaky_slope: negative slope of the LeakyReLUs in the MobileNet backbone, FPN and SSH
            (0 means plain ReLU). The public port uses 0.1 for MobileNet-0.25 and ReLU for ResNet-50.
    """

    name: str
    backbone: Backbone
    levels: tuple[LevelConfig, ...]
    out_channels: int
    variances: tuple[float, float] = (0.1, 0.2)
    num_landmarks: int = 5
    dense: bool = False
    leaky_slope: float = 0.0

    @property
    def anchors_per_location(self) -> int:
        counts = {len(level.anchor_sizes) for level in self.levels}
        if len(counts) != 1:
            raise ValueError("every level must carry the same number of anchors (the heads are shared 1x1 convs)")
        return counts.pop()

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(level.stride for level in self.levels)

    @property
    def pyramid_indices(self) -> tuple[int, ...]:
        """Pyramid index of each level: 3 for ``P3`` and so on."""
        return tuple(int(level.name[1:]) for level in self.levels)


_PUBLIC_LEVELS = (
    LevelConfig("P3", 8, (16.0, 32.0)),
    LevelConfig("P4", 16, (64.0, 128.0)),
    LevelConfig("P5", 32, (256.0, 512.0)),
)


def _paper_levels() -> tuple[LevelConfig, ...]:
    step = 2 ** (1 / 3)
    return tuple(
        LevelConfig(f"P{p}", 2**p, tuple(16.0 * 2 ** (p - 2) * step**k for k in range(3))) for p in range(2, 7)
    )


PRESETS: dict[str, ModelConfig] = {
    "mobilenet0.25": ModelConfig(
        name="mobilenet0.25",
        backbone="mobilenet0.25",
        levels=_PUBLIC_LEVELS,
        out_channels=64,
        leaky_slope=0.1,
    ),
    # The same network as trained in biubug6/Face-Detector-1MB-with-landmark: plain ReLU throughout and
    # smaller anchors (its mobilenet0.25_Final.pth has the release's key names, so it loads into either).
    "mobilenet0.25-1mb": ModelConfig(
        name="mobilenet0.25-1mb",
        backbone="mobilenet0.25",
        levels=(
            LevelConfig("P3", 8, (10.0, 20.0)),
            LevelConfig("P4", 16, (32.0, 64.0)),
            LevelConfig("P5", 32, (128.0, 256.0)),
        ),
        out_channels=64,
        leaky_slope=0.0,
    ),
    "resnet50": ModelConfig(
        name="resnet50",
        backbone="resnet50",
        levels=_PUBLIC_LEVELS,
        out_channels=256,
    ),
    "paper": ModelConfig(
        name="paper",
        backbone="resnet50",
        levels=_paper_levels(),
        out_channels=256,
    ),
}


# The configuration of the Pytorch_Retinaface release checkpoint, used for files the library does not know
# (facelocal.weights.KNOWN_CHECKPOINTS picks the preset of a known file by its hash).
DEFAULT_PRESET = "mobilenet0.25"


def get_config(name: str) -> ModelConfig:
    """Return the preset called ``name``; raises ``KeyError`` listing the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown model config {name!r}; choose one of {sorted(PRESETS)}") from None


@dataclass(frozen=True)
class PostprocessConfig:
    """Thresholds applied after decoding. Defaults are the public reference's serving values."""

    score_threshold: float = 0.5
    nms_threshold: float = 0.4
    pre_nms_top_k: int = 5000
    post_nms_top_k: int = 750
    # The public reference leaves boxes unclipped; clipping keeps them inside the image.
    clip_boxes: bool = True
    # The public reference's NMS counts a box as spanning x2 - x1 + 1 pixels (areas and overlaps); ours takes
    # coordinates as continuous (x2 - x1).
    plus_one: bool = False


EVAL_POSTPROCESS = PostprocessConfig(score_threshold=0.02)
# Pytorch_Retinaface's test_widerface.py: conf > 0.02, top 5000, NMS 0.4 with the +1 px convention, keep 750,
# boxes not clipped.
REFERENCE_EVAL_POSTPROCESS = PostprocessConfig(score_threshold=0.02, clip_boxes=False, plus_one=True)
SERVE_POSTPROCESS = PostprocessConfig()
