"""How well face regions cover WIDER FACE's annotated faces (anonymisation) and how the quality flag falls on them.

Faces are the official ground truth (:mod:`facelocal.evaluation.widerface`); a setting (Easy, Medium, Hard) counts
the faces its list keeps. For anonymisation a face counts when it is at least :data:`MIN_FACE_HEIGHT` pixels high,
and is covered when at least :data:`MIN_COVER` of its box's pixels lie in the mask. The pixels outside every
annotated box (all faces, kept or not) are the non-face pixels; the share of them in the mask is what the
covering costs the rest of the picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facelocal.evaluation.landmarks import match_faces
from facelocal.evaluation.widerface import SETTINGS, GroundTruthImage

MIN_FACE_HEIGHT = 24.0
MIN_COVER = 0.9


def _pixel_ranges(box_xywh: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    x, y, w, h = box_xywh
    x0, y0 = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
    return x0, y0, min(width, max(x0 + 1, int(np.ceil(x + w)))), min(height, max(y0 + 1, int(np.ceil(y + h))))


def box_coverage(mask: np.ndarray, boxes_xywh: np.ndarray) -> np.ndarray:
    """``(N,)`` share of each ``(N, 4)`` ``x y w h`` box's pixels that are set in the ``(H, W)`` bool mask."""
    height, width = mask.shape
    shares = []
    for box in boxes_xywh:
        x0, y0, x1, y1 = _pixel_ranges(box, width, height)
        patch = mask[y0:y1, x0:x1]
        shares.append(float(patch.mean()) if patch.size else 0.0)
    return np.array(shares)


@dataclass
class CoverageTally:
    """Running counts over images: per setting the faces considered and those covered, and the non-face
    pixels and how many of them the masks changed."""

    faces: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SETTINGS, 0))
    covered: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SETTINGS, 0))
    background: int = 0
    background_changed: int = 0

    def add(self, image: GroundTruthImage, mask: np.ndarray) -> None:
        """Count one image's faces and its ``(H, W)`` bool mask of covered pixels."""
        cover = box_coverage(mask, image.boxes)
        tall = image.boxes[:, 3] >= MIN_FACE_HEIGHT
        for setting in SETTINGS:
            keep = image.keep[setting]
            keep = keep[tall[keep]] if len(keep) else keep
            self.faces[setting] += len(keep)
            self.covered[setting] += int((cover[keep] >= MIN_COVER).sum())
        faces = np.zeros(mask.shape, bool)
        for box in image.boxes:
            x0, y0, x1, y1 = _pixel_ranges(box, mask.shape[1], mask.shape[0])
            faces[y0:y1, x0:x1] = True
        self.background += int((~faces).sum())
        self.background_changed += int((mask & ~faces).sum())

    def summary(self) -> dict:
        return {
            "min_face_height": MIN_FACE_HEIGHT,
            "min_cover": MIN_COVER,
            "faces": dict(self.faces),
            "covered_share": {s: self.covered[s] / self.faces[s] if self.faces[s] else None for s in SETTINGS},
            "non_face_pixels_changed": self.background_changed / self.background if self.background else None,
        }


@dataclass
class UsableTally:
    """Per setting: the faces, those a detection matched (IoU >= 0.5) and those whose detection is ``usable``."""

    faces: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SETTINGS, 0))
    detected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SETTINGS, 0))
    usable: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SETTINGS, 0))

    def add(self, image: GroundTruthImage, boxes_xyxy: np.ndarray, usable: np.ndarray) -> None:
        truth = image.boxes.copy()
        truth[:, 2:] += truth[:, :2]
        gt_index, det_index = match_faces(truth, boxes_xyxy.astype(np.float64))
        found = dict(zip(gt_index.tolist(), det_index.tolist(), strict=True))
        for setting in SETTINGS:
            keep = image.keep[setting].tolist()
            self.faces[setting] += len(keep)
            self.detected[setting] += sum(face in found for face in keep)
            self.usable[setting] += sum(face in found and bool(usable[found[face]]) for face in keep)

    def summary(self) -> dict:
        share = lambda counts, s: counts[s] / self.faces[s] if self.faces[s] else None  # noqa: E731
        return {
            "faces": dict(self.faces),
            "detected_share": {s: share(self.detected, s) for s in SETTINGS},
            "usable_share": {s: share(self.usable, s) for s in SETTINGS},
            "usable_of_detected": {
                s: self.usable[s] / self.detected[s] if self.detected[s] else None for s in SETTINGS
            },
        }
