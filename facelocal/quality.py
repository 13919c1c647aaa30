"""Face quality: is a detected face good enough to recognise? Numpy and OpenCV only (the service may import it).

Every figure is computed on the face's **aligned crop**: a ``112 x 112`` square of the box's longer side centred on
the box, turned so that the eye line is level (the mesh crop's geometry, :func:`facelocal.facemesh.crop_geometry`,
at scale 1), in grey levels ``[0, 1]``; only its pixels inside the image count.

- ``sharpness`` (>= 0, unitless): variance of the crop's 3x3 Laplacian over the variance of the crop itself, so that
  darkening or a lower contrast leaves it alone and only a loss of fine detail lowers it. Sharp faces on the
  shared photos give 0.16-0.31; a Gaussian blur of sigma 1 crop pixel brings them under 0.035.
- ``brightness`` ``[0, 1]``: the crop's mean grey level.
- ``underexposed`` / ``overexposed`` ``[0, 1]``: shares of the crop's pixels at or below 0.05 / at or above 0.95.
- ``inter_ocular`` (pixels): distance between the two eye landmarks in the image.
- ``frontalness`` ``[0, 1]``: ``1 - max(|yaw|, |pitch|) / 90`` from the head pose; NaN for faces without one.
- ``has_mesh``: the face has a FaceMesh mesh (its presence score is finite).
- ``usable``: all of :class:`QualityThresholds` hold (a face without a pose is judged on the other figures).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facelocal.detections import FaceDetections
from facelocal.facemesh import INPUT_SIZE, crop_geometry
from facelocal.warp import warp_affine

QUALITY_CROP = 112
DARK_LEVEL = 0.05
BRIGHT_LEVEL = 0.95
_GREY = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 luma


@dataclass(frozen=True)
class QualityThresholds:
    """When a face is ``usable`` (README, "Face quality", for the measurements behind each number).

    ``min_inter_ocular``: ArcFace's 112 px crop puts the eyes 35 px apart; below 20 px the crop is more than
    1.75x upsampled. ``min_sharpness``: sharp faces with the eyes >= 60 px apart give
    0.16-0.31; a Gaussian blur of sigma 1 crop pixel brings them to 0.024-0.032, and upsampled small faces (the
    selfie's, eyes 22-28 px apart) give 0.015-0.045.
    ``min_brightness``: the sharp faces of the shared photos have 0.28-0.61 and keep it at half their light; at a
    quarter (0.07-0.15) they fail. ``max_brightness`` and ``max_clipped``: washed out, or a third of the crop
    crushed to black or white.
    ``min_frontalness``: |yaw| or |pitch| above 50 degrees, where one eye hides (and pose errors pass 10 degrees).
    """

    min_inter_ocular: float = 20.0
    min_sharpness: float = 0.05
    min_brightness: float = 0.20
    max_brightness: float = 0.90
    max_clipped: float = 0.30
    min_frontalness: float = 0.45


DEFAULT_THRESHOLDS = QualityThresholds()


@dataclass(frozen=True)
class FaceQuality:
    """Per-face quality figures, each ``(N,)`` (see the module docstring for their meaning and ranges)."""

    sharpness: np.ndarray
    brightness: np.ndarray
    underexposed: np.ndarray
    overexposed: np.ndarray
    inter_ocular: np.ndarray
    frontalness: np.ndarray
    has_mesh: np.ndarray
    usable: np.ndarray

    def as_dicts(self, decimals: int = 4) -> list[dict]:
        """One JSON-ready dict per face (``frontalness`` ``None`` where unknown)."""
        return [
            {
                "sharpness": round(float(self.sharpness[i]), decimals),
                "brightness": round(float(self.brightness[i]), decimals),
                "underexposed": round(float(self.underexposed[i]), decimals),
                "overexposed": round(float(self.overexposed[i]), decimals),
                "inter_ocular": round(float(self.inter_ocular[i]), 2),
                "frontalness": round(float(self.frontalness[i]), decimals)
                if np.isfinite(self.frontalness[i])
                else None,
                "has_mesh": bool(self.has_mesh[i]),
                "usable": bool(self.usable[i]),
            }
            for i in range(len(self.usable))
        ]


def aligned_grey_crop(grey: np.ndarray, box: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``(112, 112)`` float32 crop in ``[0, 1]`` of an ``(H, W)`` float32 grey image that the quality
    figures are computed on, and the ``(112, 112)`` mask of its pixels that lie inside the image (the crop's
    edge against the black outside must not count as detail)."""
    geometry = crop_geometry(box.tolist(), landmarks, crop_scale=1.0)
    matrix = geometry.matrix.copy()
    matrix[:, :2] *= INPUT_SIZE / QUALITY_CROP  # the same square, sampled at 112 instead of 192 pixels
    inside = warp_affine(np.ones_like(grey), matrix, QUALITY_CROP) > 0.999
    return warp_affine(grey, matrix, QUALITY_CROP), inside


def sharpness(crop: np.ndarray, inside: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian over the variance of a ``[0, 1]`` grey crop, both on the ``inside`` pixels
    (the Laplacian's one pixel further in); 0 for a flat crop."""
    core = cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    variance = float(crop[inside].var()) if inside.any() else 0.0
    if variance < 1e-6 or not core.any():
        return 0.0
    return float(cv2.Laplacian(crop, cv2.CV_32F, ksize=1)[core].var()) / variance


def face_quality(
    rgb: np.ndarray,
    faces: FaceDetections,
    poses: np.ndarray | None = None,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
) -> FaceQuality:
    """Quality figures for every face of ``faces`` in the ``(H, W, 3)`` uint8 RGB image; ``poses`` ``(N, 3)``
    pitch, yaw, roll degrees (:func:`facelocal.pose.head_poses`, NaN rows where unknown) give ``frontalness``."""
    count = len(faces)
    grey = (rgb.astype(np.float32) @ _GREY) / np.float32(255.0)
    crops = [aligned_grey_crop(grey, box, points) for box, points in zip(faces.boxes, faces.landmarks, strict=True)]
    sharp = np.array([sharpness(crop, inside) for crop, inside in crops], np.float32)
    pixels = [crop[inside] if inside.any() else np.zeros(1, np.float32) for crop, inside in crops]
    brightness = np.array([values.mean() for values in pixels], np.float32)
    dark = np.array([(values <= DARK_LEVEL).mean() for values in pixels], np.float32)
    bright = np.array([(values >= BRIGHT_LEVEL).mean() for values in pixels], np.float32)
    eyes = faces.landmarks[:, 1] - faces.landmarks[:, 0]
    inter_ocular = np.linalg.norm(eyes, axis=-1).astype(np.float32)
    frontalness = np.full(count, np.nan, np.float32)
    if poses is not None:
        frontalness = np.clip(1.0 - np.abs(poses[:, :2]).max(axis=1) / 90.0, 0.0, 1.0).astype(np.float32)
    has_mesh = np.zeros(count, bool) if faces.mesh_scores is None else np.isfinite(faces.mesh_scores)
    usable = (
        (inter_ocular >= thresholds.min_inter_ocular)
        & (sharp >= thresholds.min_sharpness)
        & (brightness >= thresholds.min_brightness)
        & (brightness <= thresholds.max_brightness)
        & (dark <= thresholds.max_clipped)
        & (bright <= thresholds.max_clipped)
        & ~(frontalness < thresholds.min_frontalness)  # NaN (no pose) passes
    )
    return FaceQuality(sharp, brightness, dark, bright, inter_ocular, frontalness, has_mesh, usable)
