"""Blur or pixelate every face of an image, and say where. Numpy and OpenCV only (the service may import it).

Each face is covered on one polygon in image pixels:

- any face: the ellipse about its box whose semi-axes are the box's half sides times :data:`ELLIPSE_GROWTH` (the
  ellipse through the box's corners is 1.41x; an inscribed one leaves the corners, 21 % of the box, uncovered);
- a face with a confident mesh (:func:`facelocal.facemesh.confident_meshes`): the convex hull of that ellipse and
  the mesh's face oval (MediaPipe's ``FACE_OVAL`` silhouette, :data:`FACE_OVAL`) grown by :data:`OVAL_GROWTH`
  about its centroid. The oval follows a turned or tilted face where it leaves the box; it runs along the
  hairline and the jaw, while annotated boxes reach further, so alone it left 7 % of the WIDER Easy faces it
  covered under 90 % covered (README, "Anonymisation").

The high-recall preset for finding the faces is :data:`ANONYMIZE_SCORE_THRESHOLD` with ``tta=auto`` (README,
"Anonymisation", for what each costs and gains).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import cv2
import numpy as np

from facelocal.detections import FaceDetections
from facelocal.facemesh import confident_meshes
from facelocal.tta import TTAMode

AnonymizeMode = Literal["blur", "pixelate"]
ANONYMIZE_MODES: tuple[str, ...] = get_args(AnonymizeMode)
# MediaPipe's FACEMESH_FACE_OVAL as one closed loop, forehead top (10) clockwise in the image.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
OVAL_GROWTH = 1.4
ELLIPSE_GROWTH = 1.7
ELLIPSE_POINTS = 36
# Detection threshold of the high-recall preset (the service's default is 0.5).
ANONYMIZE_SCORE_THRESHOLD = 0.05
ANONYMIZE_TTA: TTAMode = "auto"
# Longest side the preset searches an image at (never upscaled; the service's max_size_limit caps it): a face
# missed is a face left uncovered, and fitted to the service's 640 px canvas a WIDER FACE photo loses its small
# faces. TTA views beyond it are skipped, as everywhere.
ANONYMIZE_MAX_SIZE = 1920
# Blur: a Gaussian whose sigma is this share of the region's longer side. Pixelate: this many blocks across it.
BLUR_SIGMA_SHARE = 0.12
PIXELATE_BLOCKS = 8


@dataclass(frozen=True)
class AnonymizedImage:
    """``image`` ``(H, W, 3)`` uint8, the input with every face covered; ``mask`` ``(H, W)`` bool, the pixels that
    were replaced; ``regions``: one ``(K, 2)`` float32 polygon (image pixels, x, y) per face in the order of the
    faces; ``region_kinds`` ``(N,)``: ``"mesh"`` (face oval) or ``"ellipse"`` (from the box)."""

    image: np.ndarray
    mask: np.ndarray
    regions: list[np.ndarray]
    region_kinds: np.ndarray


def _grown(points: np.ndarray, factor: float) -> np.ndarray:
    centre = points.mean(axis=0)
    return centre + (points - centre) * factor


def face_regions(faces: FaceDetections) -> tuple[list[np.ndarray], np.ndarray]:
    """One polygon ``(K, 2)`` float32 per face and its kind (``"mesh"`` or ``"ellipse"``), as the module says."""
    angles = np.linspace(0.0, 2.0 * np.pi, ELLIPSE_POINTS, endpoint=False)
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    regions, kinds = [], []
    confident = confident_meshes(faces.mesh_scores, len(faces))
    for row in range(len(faces)):
        x1, y1, x2, y2 = faces.boxes[row].astype(np.float64)
        half = np.array([x2 - x1, y2 - y1]) / 2.0 * ELLIPSE_GROWTH
        ellipse = (np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0]) + circle * half).astype(np.float32)
        if faces.meshes is not None and confident[row]:
            oval = _grown(faces.meshes[row][list(FACE_OVAL), :2].astype(np.float64), OVAL_GROWTH).astype(np.float32)
            regions.append(cv2.convexHull(np.concatenate([oval, ellipse]))[:, 0, :])
            kinds.append("mesh")
        else:
            regions.append(ellipse)
            kinds.append("ellipse")
    return regions, np.array(kinds, dtype=object)


def region_mask(regions: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """``(H, W)`` bool: the pixels whose centres lie in any of the polygons."""
    mask = np.zeros((height, width), np.uint8)
    shift = 4  # sub-pixel vertices; pixel i's centre is i + 0.5
    for region in regions:
        points = np.round((region - 0.5) * (1 << shift)).astype(np.int32)
        cv2.fillPoly(mask, [points], 1, lineType=cv2.LINE_8, shift=shift)
    return mask.astype(bool)


def _covered(patch: np.ndarray, mode: str) -> np.ndarray:
    side = max(patch.shape[:2])
    if mode == "blur":
        return cv2.GaussianBlur(patch, (0, 0), max(1.0, BLUR_SIGMA_SHARE * side), borderType=cv2.BORDER_REPLICATE)
    block = max(1, int(np.ceil(side / PIXELATE_BLOCKS)))
    small = cv2.resize(
        patch, (max(1, patch.shape[1] // block), max(1, patch.shape[0] // block)), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (patch.shape[1], patch.shape[0]), interpolation=cv2.INTER_NEAREST)


def anonymize(rgb: np.ndarray, faces: FaceDetections, mode: str = "blur") -> AnonymizedImage:
    """Cover every face of ``faces`` in the ``(H, W, 3)`` uint8 RGB image: ``blur`` (Gaussian, sigma 12 % of the
    face region's longer side) or ``pixelate`` (8 blocks across it); the input is not changed."""
    if mode not in ANONYMIZE_MODES:
        raise ValueError(f"unknown mode {mode!r}: one of {', '.join(ANONYMIZE_MODES)}")
    height, width = rgb.shape[:2]
    regions, kinds = face_regions(faces)
    out = rgb.copy()
    mask = np.zeros((height, width), bool)
    for region in regions:
        face_mask = region_mask([region], width, height)
        if not face_mask.any():
            continue
        rows, cols = np.nonzero(face_mask.any(axis=1))[0], np.nonzero(face_mask.any(axis=0))[0]
        top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        covered = _covered(rgb[top:bottom, left:right], mode)
        inside = face_mask[top:bottom, left:right]
        out[top:bottom, left:right][inside] = covered[inside]
        mask |= face_mask
    return AnonymizedImage(out, mask, regions, kinds)
