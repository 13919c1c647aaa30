"""Resize policies and the canvas the network takes (:mod:`facelocal.contract`).

Numpy and Pillow only: the serving path shares this module without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, cast

import numpy as np
from PIL import Image

from facelocal.contract import BGR_MEAN, INPUT_DTYPE

ResizeMode = Literal["original", "long", "letterbox", "fit"]

# ``fit`` canvases are rounded up to a multiple of the deepest stride of the shipped presets (P5, 32 px), so
# every feature map covers the canvas exactly and the few canvas shapes batch together.
CANVAS_MULTIPLE = 32


@dataclass(frozen=True)
class ResizePolicy:
    """How an image is fitted to the network input.

    * ``original``: the image as it is.
    * ``long``: the longest side scaled to ``size``.
    * ``letterbox``: scaled to fit a ``size x size`` canvas (never up, unless ``upscale``), placed at the
      top-left corner and padded with the mean colour, so that images of any shape stack into one batch.
    * ``fit``: the longest side scaled to at most ``size`` (never up, unless ``upscale``), at the top-left of a
      canvas of its own whose sides are rounded up to :data:`CANVAS_MULTIPLE` (the service's policy): a
      640x480 image runs at 640x480, with no square's padding.
    """

    mode: ResizeMode = "original"
    size: int = 640
    upscale: bool = False

    @classmethod
    def parse(cls, text: str) -> ResizePolicy:
        """Parse ``original``, ``long:S``, ``letterbox:S`` or ``fit:S``."""
        mode, _, size = text.partition(":")
        if mode == "original" and not size:
            return cls("original")
        if mode in ("long", "letterbox", "fit") and size.isdigit() and int(size) > 0:
            return cls(cast(ResizeMode, mode), int(size))
        raise ValueError(f"invalid resize policy {text!r}: use original, long:S, letterbox:S or fit:S")

    def plan(self, width: int, height: int) -> Placement:
        """Where an image of this size lands on the network canvas."""
        if self.mode == "original":
            return Placement(1.0, width, height, width, height)
        scale = self.size / max(width, height)
        if self.mode != "long" and not self.upscale:
            scale = min(scale, 1.0)
        resized_w, resized_h = max(1, round(width * scale)), max(1, round(height * scale))
        placement = Placement(scale, resized_w, resized_h, resized_w, resized_h)
        if self.mode == "letterbox":
            return replace(placement, canvas_w=self.size, canvas_h=self.size)
        return placement.padded() if self.mode == "fit" else placement


# The image as it is: the library's default (the service uses ``fit`` instead).
ORIGINAL_SIZE = ResizePolicy()


@dataclass(frozen=True)
class Placement:
    """An image resized by ``scale`` to ``resized_w x resized_h`` at the top-left of a ``canvas_w x canvas_h``
    canvas. Network coordinates map back to the image as ``x / scale``."""

    scale: float
    resized_w: int
    resized_h: int
    canvas_w: int
    canvas_h: int

    def padded(self, multiple: int = CANVAS_MULTIPLE) -> Placement:
        """The same image on a canvas just large enough for it, its sides rounded up to ``multiple``."""
        return replace(
            self, canvas_w=-(-self.resized_w // multiple) * multiple, canvas_h=-(-self.resized_h // multiple) * multiple
        )

    def to_image(self, coords: np.ndarray) -> np.ndarray:
        """Map canvas pixel coordinates (any shape) back to original-image pixels."""
        return coords / np.float32(self.scale) if self.scale != 1.0 else coords


def to_canvas(rgb: np.ndarray, placement: Placement | None = None) -> np.ndarray:
    """An RGB ``(H, W, 3)`` uint8 image to the network's ``(3, canvas_h, canvas_w)`` uint8 BGR canvas.

    The image is resized as ``placement`` says and put at the top-left; the rest is the mean colour, which
    the graph's mean subtraction turns into zeros.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[:2]
    placement = placement or Placement(1.0, width, height, width, height)
    if (placement.resized_w, placement.resized_h) != (width, height):
        rgb = np.asarray(
            Image.fromarray(rgb).resize((placement.resized_w, placement.resized_h), Image.Resampling.BILINEAR)
        )
    h, w = placement.resized_h, placement.resized_w
    if (h, w) == (placement.canvas_h, placement.canvas_w):
        return np.ascontiguousarray(rgb.transpose(2, 0, 1)[::-1])
    out = np.empty((3, placement.canvas_h, placement.canvas_w), INPUT_DTYPE)
    out[:] = np.asarray(BGR_MEAN, INPUT_DTYPE)[:, None, None]
    out[:, :h, :w] = rgb.transpose(2, 0, 1)[::-1]
    return out
