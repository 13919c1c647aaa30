"""Test-time augmentation over a :class:`~facelocal.detector.Detector`, as in the paper's testing
details: horizontal flip, multi-scale, and box voting on the union of every view at IoU 0.4.

The network-free pieces live in :mod:`facelocal.tta_ops` so that the serving path can reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facelocal.detector import Detector
from facelocal.preprocess import ResizePolicy
from facelocal.tta_ops import MultiScalePlan, box_voting, flip_image, unflip
from facelocal.types import FaceDetections


@dataclass(frozen=True)
class TTAConfig:
    """Which augmentations to run. With neither ``flip`` nor ``multiscale`` the detector runs once, unvoted."""

    flip: bool = False
    multiscale: bool = False
    scales: MultiScalePlan = field(default_factory=MultiScalePlan)
    vote_iou: float = 0.4

    @classmethod
    def parse(cls, text: str) -> TTAConfig:
        """``""``, ``flip``, ``multiscale`` or ``flip,multiscale``."""
        parts = {p.strip() for p in text.split(",") if p.strip()}
        unknown = parts - {"flip", "multiscale"}
        if unknown:
            raise ValueError(f"unknown test-time augmentation {sorted(unknown)}: use flip and/or multiscale")
        return cls(flip="flip" in parts, multiscale="multiscale" in parts)

    @property
    def enabled(self) -> bool:
        return self.flip or self.multiscale


class AugmentedDetector:
    """Runs ``detector`` over every view of an image and votes the union into one set of faces.

    Views: the detector's own resize policy, plus each multi-scale size (``ResizePolicy("long", S)``), each
    also mirrored when ``flip`` is on. Every view goes through the detector's post-processing (threshold and
    NMS) before the vote.
    """

    def __init__(self, detector: Detector, config: TTAConfig) -> None:
        self.detector = detector
        self.config = config

    def detect_one(self, rgb: np.ndarray) -> FaceDetections:
        """Faces in one ``(H, W, 3)`` uint8 RGB image, in its pixels."""
        if not self.config.enabled:
            return self.detector.detect([rgb])[0]
        height, width = rgb.shape[:2]
        detectors = [self.detector]
        if self.config.multiscale:
            detectors += [self.detector.with_resize(ResizePolicy("long", s)) for s in self.config.scales.long_sides(width, height)]
        views = []
        for detector in detectors:
            views.append(detector.detect([rgb])[0])
            if self.config.flip:
                views.append(unflip(detector.detect([np.ascontiguousarray(flip_image(rgb))])[0]))
        return box_voting(views, self.config.vote_iou, self.detector.postprocess.post_nms_top_k)

    def detect(self, images: list[np.ndarray]) -> list[FaceDetections]:
        return [self.detect_one(rgb) for rgb in images]
