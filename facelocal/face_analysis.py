"""What a meshed face tells beyond its box, in one call: the five points' source, head pose and quality.

The service's ``landmarks``, ``return_pose`` and ``return_quality`` options are this function on the faces the
pipeline found (:func:`facelocal.pipeline.mesh_steps`, with :data:`facelocal.pose.POSE_MESH_REFINE` passes when a
pose is wanted, as ``facelocal eval pose`` and ``eval quality`` measure it). Numpy and OpenCV only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facelocal.detections import FaceDetections
from facelocal.landmark_source import with_landmarks_from
from facelocal.pose import CanonicalFace, head_poses
from facelocal.quality import FaceQuality, face_quality


@dataclass(frozen=True)
class FaceAnalysis:
    """``faces`` with the chosen five points; ``landmark_sources`` ``(N,)`` ``"detector"``/``"mesh"``; ``poses``
    ``(N, 3)`` pitch, yaw, roll degrees (NaN rows: no pose) when asked; ``quality`` when asked."""

    faces: FaceDetections
    landmark_sources: np.ndarray
    poses: np.ndarray | None
    quality: FaceQuality | None


def analyze_faces(
    rgb: np.ndarray | None,
    faces: FaceDetections,
    landmarks: str = "detector",
    canonical: CanonicalFace | None = None,
    quality: bool = False,
) -> FaceAnalysis:
    """Pose every meshed face when ``canonical`` is given (:func:`facelocal.pose.head_poses`), take the five
    points from ``landmarks`` (:func:`facelocal.landmark_source.with_landmarks_from`), and with ``quality`` judge
    each face of the ``(H, W, 3)`` uint8 ``rgb`` on its chosen points (frontalness from the pose, NaN without)."""
    poses = None if canonical is None else head_poses(faces, canonical)
    faces, sources = with_landmarks_from(faces, landmarks)
    figures = None
    if quality:
        if rgb is None:
            raise ValueError("quality needs the image's pixels")
        figures = face_quality(rgb, faces, poses)
    return FaceAnalysis(faces, sources, poses, figures)
