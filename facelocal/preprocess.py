"""Resize policies and the input normalisation the public weights were trained with.

Numpy and Pillow only: the serving path shares this module without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from facelocal.config import BGR_MEAN

ResizeMode = Literal["original", "long", "letterbox"]


@dataclass(frozen=True)
class ResizePolicy:
    """How an image is fitted to the network input.

    * ``original``: the image as it is.
    * ``long``: the longest side scaled to ``size``.
    * ``letterbox``: scaled to fit a ``size x size`` canvas (never up, unless ``upscale``), placed at the
      top-left corner and padded with the mean colour, so that images of any shape stack into one batch.
    """

    mode: ResizeMode = "original"
    size: int = 640
    upscale: bool = False

    @classmethod
    def parse(cls, text: str) -> ResizePolicy:
        """Parse ``original``, ``long:S`` or ``letterbox:S``."""
        mode, _, size = text.partition(":")
        if mode == "original" and not size:
            return cls("original")
        if mode in ("long", "letterbox") and size.isdigit() and int(size) > 0:
            return cls(mode, int(size))
        raise ValueError(f"invalid resize policy {text!r}: use original, long:S or letterbox:S")

    def plan(self, width: int, height: int) -> Placement:
        """Where an image of this size lands on the network canvas."""
        if self.mode == "original":
            return Placement(1.0, width, height, width, height)
        scale = self.size / max(width, height)
        if self.mode == "letterbox" and not self.upscale:
            scale = min(scale, 1.0)
        resized_w, resized_h = max(1, round(width * scale)), max(1, round(height * scale))
        if self.mode == "letterbox":
            return Placement(scale, resized_w, resized_h, self.size, self.size)
        return Placement(scale, resized_w, resized_h, resized_w, resized_h)


@dataclass(frozen=True)
class Placement:
    """An image resized by ``scale`` to ``resized_w x resized_h`` at the top-left of a ``canvas_w x canvas_h``
    canvas. Network coordinates map back to the image as ``x / scale``."""

    scale: float
    resized_w: int
    resized_h: int
    canvas_w: int
    canvas_h: int

    def to_image(self, coords: np.ndarray) -> np.ndarray:
        """Map canvas pixel coordinates (any shape) back to original-image pixels."""
        return coords / np.float32(self.scale) if self.scale != 1.0 else coords


def to_network_input(rgb: np.ndarray, placement: Placement | None = None) -> np.ndarray:
    """An RGB ``(H, W, 3)`` uint8 image to the network's ``(3, canvas_h, canvas_w)`` float32 input.

    Channels are reordered to BGR and the mean (104, 117, 123) is subtracted, with no scaling, as the
    public weights were trained. Padding is zero after the subtraction, i.e. the mean colour.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[:2]
    placement = placement or Placement(1.0, width, height, width, height)
    if (placement.resized_w, placement.resized_h) != (width, height):
        rgb = np.asarray(Image.fromarray(rgb).resize((placement.resized_w, placement.resized_h), Image.BILINEAR))
    out = np.zeros((3, placement.canvas_h, placement.canvas_w), np.float32)
    h, w = placement.resized_h, placement.resized_w
    # Reorder to BGR planes while still uint8 (a quarter of the bytes of float32), then cast and subtract in
    # one contiguous pass: about 1.5x faster than three strided per-channel passes on HD and 4K frames.
    planes = np.ascontiguousarray(rgb.transpose(2, 0, 1)[::-1])
    np.subtract(planes, np.asarray(BGR_MEAN, np.float32)[:, None, None], out=out[:, :h, :w], dtype=np.float32)
    return out
