"""Test-time augmentation planned and merged in one place, as the paper's testing details: horizontal flip,
multi-scale, and box voting on the union of every view at IoU 0.4.

A :class:`TTAPlan` lists the views of an image (where it lies on the canvas, mirrored or not) and votes the
views' faces into one set. Planning may take two passes: :meth:`TTAPlan.views` are run first, then
:meth:`TTAPlan.follow_up_views`, chosen from the faces the first view found (``auto`` upscales only images with
small faces), then one :meth:`TTAPlan.merge` of every view. :meth:`facelocal.detector.Detector.detect_augmented`
(``facelocal eval --tta``) and the service core (the ``tta`` request option) both run it, and
:meth:`TTAPlan.parse` is the one spelling of both. Numpy only: the network-free pieces are in
:mod:`facelocal.tta_ops`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from facelocal.config import EVAL_POSTPROCESS
from facelocal.detections import FaceDetections
from facelocal.preprocess import Placement, ResizePolicy
from facelocal.tta_ops import MultiScalePlan, box_voting, unflip

# The spellings the CLI (``--tta``) and the API (``tta``) accept, and nothing else.
TTAMode = Literal["none", "flip", "multiscale", "flip,multiscale", "auto"]
TTA_MODES: tuple[str, ...] = get_args(TTAMode)

# IoU at which the views' faces are voted into one face (the paper's value).
VOTE_IOU = 0.4

# A voted score averages a view's and its mirror's scores, so each view keeps its faces down to this score
# whatever the caller's threshold (the evaluation's own, so served and evaluated votes are the same); the voted
# faces are then cut at the caller's threshold.
AGREEMENT_VIEW_THRESHOLD = EVAL_POSTPROCESS.score_threshold


@dataclass(frozen=True)
class View:
    """One way of showing an image to the network: its placement on the canvas, of the mirrored image or not."""

    placement: Placement
    mirrored: bool


@dataclass(frozen=True)
class SmallFaceZoom:
    """A follow-up pass for small faces: when the first view found a face scoring at least ``min_score`` whose
    shorter box side is under ``small_side`` image pixels, the image again at ``factor`` times its size (long side
    at most ``max_long_side``), where the network sees such faces at a size it was trained on.

    The defaults are the plan measured best on the WIDER val sample (README, "Test-time augmentation").
    """

    factor: float = 2.0
    small_side: float = 24.0
    min_score: float = 0.3
    max_long_side: int = 2000

    def wanted(self, faces: FaceDetections) -> bool:
        """Whether ``faces`` (one view's, in image pixels) hold a small face worth a second look."""
        sides = np.minimum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1])
        return bool(np.any((faces.scores >= self.min_score) & (sides < self.small_side)))

    def placement(self, width: int, height: int) -> Placement | None:
        """The enlarged image's placement (its own canvas), or None when the long-side cap leaves no enlargement."""
        long = max(width, height)
        side = round(long * min(self.factor, self.max_long_side / long))
        return ResizePolicy("long", side).plan(width, height) if side > long else None


@dataclass(frozen=True)
class TTAPlan:
    """Which augmentations to run. With neither ``flip``, ``multiscale`` nor ``zoom`` there is one view, unvoted."""

    flip: bool = False
    multiscale: bool = False
    zoom: SmallFaceZoom | None = None
    scales: MultiScalePlan = field(default_factory=MultiScalePlan)
    vote_iou: float = VOTE_IOU

    @classmethod
    def parse(cls, text: str) -> TTAPlan:
        """One of :data:`TTA_MODES`: ``none``, ``flip``, ``multiscale``, ``flip,multiscale``, or ``auto`` (flip,
        plus the flipped pair again at 2x when the first view found small faces)."""
        if text not in TTA_MODES:
            raise ValueError(f"unknown test-time augmentation {text!r}: use one of {', '.join(TTA_MODES)}")
        if text == "auto":
            return cls(flip=True, zoom=SmallFaceZoom())
        parts = text.split(",")
        return cls(flip="flip" in parts, multiscale="multiscale" in parts)

    @property
    def mode(self) -> str:
        """The canonical spelling (one of :data:`TTA_MODES`)."""
        if self.zoom is not None:
            return "auto"
        return ",".join(name for name, on in (("flip", self.flip), ("multiscale", self.multiscale)) if on) or "none"

    @property
    def enabled(self) -> bool:
        return self.flip or self.multiscale or self.zoom is not None

    def views(self, width: int, height: int, base: ResizePolicy) -> list[View]:
        """The first pass's views of a ``width x height`` image: ``base``'s placement first, then one per
        multi-scale long side (``ResizePolicy("long", S)``, on a canvas of its own size), then, with ``flip``, each
        of those mirrored. Where a canvas is bounded, the caller skips the views that exceed it (the service core's
        ``max_size``, :meth:`facelocal.detector.Detector.detect_augmented` under ``letterbox``/``fit``).
        """
        placements = [base.plan(width, height)]
        if self.multiscale:
            placements += [
                ResizePolicy("long", side).plan(width, height) for side in self.scales.long_sides(width, height)
            ]
        return self._with_mirrors(placements)

    def follow_up_views(self, width: int, height: int, base_faces: FaceDetections) -> list[View]:
        """The second pass's views, decided from ``base_faces`` (what the first of :meth:`views` found):
        with ``zoom``, the enlarged image (and its mirror with ``flip``) if those faces hold a small one;
        otherwise none. Each on a canvas of its own size, as :meth:`views`' added views."""
        if self.zoom is None or not self.zoom.wanted(base_faces):
            return []
        placement = self.zoom.placement(width, height)
        return [] if placement is None else self._with_mirrors([placement])

    def view_threshold(self, score_threshold: float) -> float:
        """The score down to which each view keeps its faces, so that the merged faces are right at
        ``score_threshold``: lower with ``flip``, whose voted score is a mean of a view's and its mirror's."""
        return min(score_threshold, AGREEMENT_VIEW_THRESHOLD) if self.flip else score_threshold

    def merge(
        self, views: Sequence[View], detections: Sequence[FaceDetections], max_faces: int, score_threshold: float
    ) -> FaceDetections:
        """One image's faces scoring above ``score_threshold`` from each view's ``detections`` (in image pixels,
        mirrored ones as found on the mirrored image, each kept down to :meth:`view_threshold`): mirrored views
        un-flipped, then box voting; a single view is returned as it is.

        A voted face scores, for its best-agreeing pair of a view and its mirror, the mean of each one's best score
        in the cluster (a view that missed it counts 0); without ``flip`` every view is its own pair, so this is
        the best score. A face that only one of a pair sees scores half: at the API's 0.5, ``flip`` then returns
        about the share of false faces of a single pass, where the best score let each view's false faces through
        (README, "Test-time augmentation").
        """
        found = [unflip(faces) if view.mirrored else faces for view, faces in zip(views, detections, strict=True)]
        if len(found) == 1:
            return found[0]
        pairs: dict[Placement, int] = {}
        agreement = [pairs.setdefault(view.placement, len(pairs)) for view in views]
        return box_voting(found, self.vote_iou, max_faces, agreement, score_threshold)

    def _with_mirrors(self, placements: list[Placement]) -> list[View]:
        """Each placement as a view, then, with ``flip``, each mirrored."""
        views = [View(placement, mirrored=False) for placement in placements]
        return views + [View(placement, mirrored=True) for placement in placements] if self.flip else views
