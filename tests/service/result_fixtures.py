"""Small :class:`~service.results.DetectionResult` values for the edge converters' unit tests."""

from __future__ import annotations

import numpy as np

from facelocal.detections import FaceDetections
from facelocal.facemesh import NUM_VERTICES
from service.results import DetectionResult
from service.schemas import Timings


def two_faces(with_mesh: bool = False, landmarks: bool = True, crops: bool = False) -> DetectionResult:
    """Two faces in a 100x80 image; with ``with_mesh`` the first has a mesh and the second is too small."""
    boxes = np.array([[10.123, 20.456, 50.789, 70.001], [60.0, 5.0, 70.0, 15.0]], np.float32)
    scores = np.array([0.987654, 0.51], np.float32)
    points = np.arange(20, dtype=np.float32).reshape(2, 5, 2) + np.float32(0.3333)
    faces = FaceDetections(boxes, scores, points, 100, 80)
    result = DetectionResult(100, 80, "mobilenet0.25", faces, truncated=False, landmarks=landmarks)
    result.timings = Timings(decode=1.0, queue=0.5, inference=7.0, postprocess=0.25)
    if with_mesh:
        meshes = np.full((2, NUM_VERTICES, 3), np.nan, np.float32)
        meshes[0] = np.linspace(0, 100, NUM_VERTICES * 3, dtype=np.float32).reshape(NUM_VERTICES, 3)
        faces.meshes, faces.mesh_scores = meshes, np.array([0.912346, np.nan], np.float32)
        result.mesh_skipped = [None, "face_too_small"]
        result.timings = result.timings.model_copy(update={"mesh": 3.0})
    if crops:
        result.crops = [b"\x89PNG one", b"\x89PNG two"]
    return result
