"""ArcFace face alignment: a similarity transform of the five landmarks onto the standard template."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from facelocal.warp import warp_affine

CROP_SIZE = 112
# Where ArcFace (InsightFace) expects the five landmarks in a 112x112 crop.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) taking ``src`` to ``dst``.

    Args:
        src, dst: ``(N, 2)`` corresponding points.
    Returns:
        ``(3, 3)`` homogeneous matrix ``T`` with ``dst ~ T @ [x, y, 1]`` (Umeyama 1991).
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_centred, dst_centred = src - src_mean, dst - dst_mean
    covariance = dst_centred.T @ src_centred / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    # Forbid reflections: flip the weakest axis if the best orthogonal fit has det -1.
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rotation = u @ sign @ vt
    src_variance = (src_centred**2).sum() / len(src)
    scale = float(np.trace(np.diag(singular) @ sign) / src_variance) if src_variance > 0 else 1.0
    transform = np.eye(3)
    transform[:2, :2] = scale * rotation
    transform[:2, 2] = dst_mean - scale * rotation @ src_mean
    return transform


def align_face(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Warp the face with ``(5, 2)`` image-pixel ``landmarks`` to a ``(112, 112, 3)`` uint8 ArcFace crop."""
    transform = umeyama_similarity(landmarks, ARCFACE_TEMPLATE)
    # The warp maps each crop point to an image point, i.e. wants the inverse transform.
    return warp_affine(rgb, np.linalg.inv(transform)[:2], CROP_SIZE)


def encode_png(rgb: np.ndarray) -> bytes:
    """``(H, W, 3)`` uint8 to a PNG file's bytes."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()
