"""Test-time augmentation planned and merged in one place, as the paper's testing details: horizontal flip,
multi-scale, and box voting on the union of every view at IoU 0.4.

A :class:`TTAPlan` lists the views of an image (where it lies on the canvas, mirrored or not) and votes the
views' faces into one set. :meth:`facelocal.detector.Detector.detect_augmented` (``facelocal eval --tta``) and
the service core (the ``tta`` request option) both run it, and :meth:`TTAPlan.parse` is the one spelling of
both. Numpy only: the network-free pieces are in :mod:`facelocal.tta_ops`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

from facelocal.detections import FaceDetections
from facelocal.preprocess import Placement, ResizePolicy
from facelocal.tta_ops import MultiScalePlan, box_voting, unflip

# The spellings the CLI (``--tta``) and the API (``tta``) accept, and nothing else.
TTAMode = Literal["none", "flip", "multiscale", "flip,multiscale"]
TTA_MODES: tuple[str, ...] = get_args(TTAMode)

# IoU at which the views' faces are voted into one face (the paper's value).
VOTE_IOU = 0.4


@dataclass(frozen=True)
class View:
    """One way of showing an image to the network: its placement on the canvas, of the mirrored image or not."""

    placement: Placement
    mirrored: bool


@dataclass(frozen=True)
class TTAPlan:
    """Which augmentations to run. With neither ``flip`` nor ``multiscale`` there is one view, unvoted."""

    flip: bool = False
    multiscale: bool = False
    scales: MultiScalePlan = field(default_factory=MultiScalePlan)
    vote_iou: float = VOTE_IOU

    @classmethod
    def parse(cls, text: str) -> TTAPlan:
        """One of :data:`TTA_MODES`: ``none``, ``flip``, ``multiscale`` or ``flip,multiscale``."""
        if text not in TTA_MODES:
            raise ValueError(f"unknown test-time augmentation {text!r}: use one of {', '.join(TTA_MODES)}")
        parts = text.split(",")
        return cls(flip="flip" in parts, multiscale="multiscale" in parts)

    @property
    def mode(self) -> str:
        """The canonical spelling (one of :data:`TTA_MODES`)."""
        return ",".join(name for name, on in (("flip", self.flip), ("multiscale", self.multiscale)) if on) or "none"

    @property
    def enabled(self) -> bool:
        return self.flip or self.multiscale

    def views(self, width: int, height: int, base: ResizePolicy, max_canvas: int | None = None) -> list[View]:
        """The views of a ``width x height`` image: ``base``'s placement first, then one per multi-scale long
        side (``ResizePolicy("long", S)``), then, with ``flip``, each of those mirrored.

        With ``max_canvas`` (a fixed square canvas, as the service's) every multi-scale view is put on that
        canvas, and a scale whose long side exceeds it is skipped rather than tiled.
        """
        placements = [base.plan(width, height)]
        if self.multiscale:
            for side in self.scales.long_sides(width, height):
                placement = ResizePolicy("long", side).plan(width, height)
                if max_canvas is None:
                    placements.append(placement)
                elif side <= max_canvas:
                    placements.append(replace(placement, canvas_w=max_canvas, canvas_h=max_canvas))
        views = [View(placement, mirrored=False) for placement in placements]
        if self.flip:
            views += [View(placement, mirrored=True) for placement in placements]
        return views

    def merge(self, views: Sequence[View], detections: Sequence[FaceDetections], max_faces: int) -> FaceDetections:
        """One image's faces from each view's ``detections`` (in image pixels, mirrored ones as found on the
        mirrored image): mirrored views un-flipped, then box voting; a single view is returned as it is."""
        found = [unflip(faces) if view.mirrored else faces for view, faces in zip(views, detections, strict=True)]
        return found[0] if len(found) == 1 else box_voting(found, self.vote_iou, max_faces)
