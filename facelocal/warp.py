"""Affine crops: the one resampler behind the mesh crops and the service's ArcFace crops.

Coordinates are continuous pixels (pixel ``i`` spans ``[i, i + 1)``, its centre at ``i + 0.5``) on both sides, as in
:mod:`facelocal.facemesh`. OpenCV indexes pixel centres at integers instead, so the matrix is shifted by half a
pixel on each side before it is handed over. OpenCV's bilinear ``warpAffine`` rather than Pillow's affine transform:
it is several times faster per crop (README, "Cost per face"), and rounds where Pillow truncates.
"""

from __future__ import annotations

import cv2
import numpy as np


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Resample ``image`` onto a ``size`` x ``size`` crop, bilinear, black outside the image.

    Args:
        image: ``(H, W, C)`` uint8 or ``(H, W)`` float32 pixels.
        matrix: ``(2, 3)`` map from crop coordinates to image coordinates (continuous pixels): crop point
            ``(u, v)`` reads the image at ``matrix @ (u, v, 1)``.
        size: side of the square crop, pixels.
    Returns:
        ``(size, size, C)`` (or ``(size, size)``) crop of the image's dtype.
    """
    matrix = np.asarray(matrix, np.float64).reshape(2, 3)
    linear = matrix[:, :2]
    # crop index (i, j) is the point (i + 0.5, j + 0.5); image point p is index p - 0.5
    offset = matrix[:, 2] + linear.sum(axis=1) * 0.5 - 0.5
    return cv2.warpAffine(
        image,
        np.hstack([linear, offset[:, None]]),
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
