"""Where a face's five landmarks come from: RetinaFace's own (``detector``) or FaceMesh's vertices (``mesh``).

On the 300-W Helen faces the mesh's five points are the better ones (NME 1.94 % against 2.82 %, README), so
``landmarks=mesh`` puts them in place of RetinaFace's for every face with a confident mesh
(:func:`facelocal.facemesh.confident_meshes`); a face without one (too small for the mesh stage, or a profile
whose crop FaceMesh doubts, where the mesh's eye can sit on the ear) keeps RetinaFace's points. Numpy only: the
service may import it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from facelocal.detections import FaceDetections
from facelocal.facemesh import confident_meshes, five_points

LANDMARK_SOURCES = ("detector", "mesh")


def with_landmarks_from(faces: FaceDetections, source: str) -> tuple[FaceDetections, np.ndarray]:
    """``faces`` with the five points ``source`` asks for, and ``(N,)`` the source each face's points came from
    (``"mesh"`` or ``"detector"``). The mesh's points are :func:`facelocal.facemesh.five_points`: eye-contour
    centres, vertex 4, mouth corners 61 and 291."""
    if source not in LANDMARK_SOURCES:
        raise ValueError(f"unknown landmark source {source!r}: one of {', '.join(LANDMARK_SOURCES)}")
    sources = np.full(len(faces), "detector", dtype=object)
    if source == "detector" or faces.meshes is None:
        return faces, sources
    meshed = confident_meshes(faces.mesh_scores, len(faces)) & np.isfinite(faces.meshes).all(axis=(1, 2))
    landmarks = faces.landmarks.copy()
    for row in np.nonzero(meshed)[0]:
        landmarks[row] = five_points(faces.meshes[row])
    sources[meshed] = "mesh"
    return replace(faces, landmarks=landmarks), sources
