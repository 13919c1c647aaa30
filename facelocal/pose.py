"""Head pose from FaceMesh's 468 vertices: a rigid (similarity) fit to MediaPipe's canonical face model.

Numpy only (the service may import it). The canonical face (``canonical_face_model.obj``, Apache-2.0, from the
``mediapipe`` wheel's face-geometry module) lies beside ``face_landmark.tflite`` and is found the same way
(:func:`resolve_face_geometry`: ``--mesh-weights``, ``$FACELOCAL_MESH_WEIGHTS`` or the weights table).

The fit: the mesh in image pixels (x right, y down, z negative towards the camera, on the x scale) is turned into
the canonical model's frame (x right, y up, z towards the viewer) by negating y and z, and a least-squares
similarity transform ``mesh ~ s R canonical + t`` (Umeyama) over all 468 vertices gives the rotation ``R``.
MediaPipe's per-vertex Procrustes weights (``geometry_pipeline_metadata_landmarks.pbtxt``) were measured too and
are slightly worse on AFLW2000-3D (6.26 against 6.20 degrees over every face), so every vertex weighs the same.

Angles follow AFLW2000-3D's ``Pose_Para`` (Zhu et al.'s 3DDFA convention): ``R = Rx(-pitch) Ry(-yaw) Rz(-roll)``
with standard right-handed rotations about the head's x (to the image's right), y (up) and z (towards the camera)
axes, x applied last. In words, as the photo is seen: **yaw** is positive when the face turns towards the image's
left (the nose points left: the subject turns to their own right), **pitch** positive when the chin goes up (the
nose tip moves up the face), **roll** positive when the face turns clockwise in the image (the eye on the image's
right lies lower). All three are 0 for a face looking straight at the camera, upright.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facelocal.detections import FaceDetections
from facelocal.facemesh import CONFIDENT_PRESENCE, NUM_VERTICES, confident_meshes

CANONICAL_MODEL_FILE = "canonical_face_model.obj"
GEOMETRY_METADATA_FILE = "geometry_pipeline_metadata_landmarks.pbtxt"
AXES = ("pitch", "yaw", "roll")
# Mesh passes after the first crop that a pose is measured with (README, "Head pose": 4.20 degrees on the
# presence-gated faces against 6.63 from the first crop over all): ``eval pose`` and the service both use it.
POSE_MESH_REFINE = 1
# Image pixels (x right, y down, z away from the viewer) to the canonical model's frame (y up, z towards it).
_IMAGE_TO_MODEL = np.array([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class CanonicalFace:
    """MediaPipe's canonical face: ``vertices`` ``(468, 3)`` in centimetres of a canonical head (x right, y up,
    z towards the viewer) in the mesh's vertex order, and ``procrustes_weights`` ``(468,)`` (zero for the
    vertices MediaPipe's geometry pipeline leaves out of its fit)."""

    vertices: np.ndarray
    procrustes_weights: np.ndarray

    @classmethod
    def load(cls, folder: str | os.PathLike) -> CanonicalFace:
        """Read ``canonical_face_model.obj`` and the ``.pbtxt`` of Procrustes weights from ``folder``."""
        folder = Path(folder)
        obj, metadata = folder / CANONICAL_MODEL_FILE, folder / GEOMETRY_METADATA_FILE
        missing = [str(path) for path in (obj, metadata) if not path.is_file()]
        if missing:
            raise FileNotFoundError(
                f"MediaPipe's face geometry is missing: {', '.join(missing)} (it belongs beside face_landmark.tflite; "
                'README, "Head pose")'
            )
        vertices = np.array(
            [[float(v) for v in line.split()[1:4]] for line in obj.read_text().splitlines() if line.startswith("v ")]
        )
        if vertices.shape != (NUM_VERTICES, 3):
            raise ValueError(f"{obj}: expected {NUM_VERTICES} vertices, found {len(vertices)}")
        weights = np.zeros(NUM_VERTICES)
        for index, weight in re.findall(r"landmark_id:\s*(\d+)\s+weight:\s*([0-9.eE+-]+)", metadata.read_text()):
            weights[int(index)] = float(weight)
        return cls(vertices, weights)


def resolve_face_geometry(mesh_weights: str | os.PathLike | None = None) -> Path:
    """The folder of the canonical face: the one holding the FaceMesh weights that ``mesh_weights``,
    ``$FACELOCAL_MESH_WEIGHTS`` or the weights table name (:func:`facelocal.weights.resolve_mesh_weights`)."""
    from facelocal.weights import resolve_mesh_weights

    return resolve_mesh_weights(mesh_weights).parent


def similarity_fit(
    source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted least-squares ``target ~ scale * rotation @ source + translation`` over ``(N, 3)`` point pairs
    (Umeyama 1991, no reflection; ``weights`` ``(N,)``, equal when None). Returns ``scale``, ``rotation``
    ``(3, 3)`` and ``translation`` ``(3,)``."""
    weights = np.full(len(source), 1.0 / len(source)) if weights is None else weights / weights.sum()
    source_mean, target_mean = weights @ source, weights @ target
    a, b = source - source_mean, target - target_mean
    u, singular, vt = np.linalg.svd((b * weights[:, None]).T @ a)
    sign = np.diag([1.0, 1.0, float(np.sign(np.linalg.det(u @ vt)) or 1.0)])
    rotation = u @ sign @ vt
    scale = float((singular * np.diag(sign)).sum() / (weights @ (a**2).sum(axis=1)))
    return scale, rotation, target_mean - scale * rotation @ source_mean


def euler_angles(rotation: np.ndarray) -> np.ndarray:
    """``(pitch, yaw, roll)`` degrees of a ``(3, 3)`` model-to-camera rotation in ``Pose_Para``'s convention:
    ``rotation = Rx(-pitch) @ Ry(-yaw) @ Rz(-roll)`` (x first, as the data set composes them)."""
    yaw = -math.asin(max(-1.0, min(1.0, float(rotation[0, 2]))))
    pitch = -math.atan2(-float(rotation[1, 2]), float(rotation[2, 2]))
    roll = -math.atan2(-float(rotation[0, 1]), float(rotation[0, 0]))
    return np.degrees([pitch, yaw, roll])


def head_pose(mesh: np.ndarray, canonical: CanonicalFace, procrustes_weights: bool = False) -> np.ndarray:
    """``(pitch, yaw, roll)`` degrees of one ``(468, 3)`` image-pixel mesh; every vertex weighs the same unless
    ``procrustes_weights`` (MediaPipe's 33 weighted vertices, measured slightly worse: see the module)."""
    weights = canonical.procrustes_weights if procrustes_weights else None
    _, rotation, _ = similarity_fit(canonical.vertices, np.asarray(mesh, np.float64) * _IMAGE_TO_MODEL, weights)
    return euler_angles(rotation)


def head_poses(faces: FaceDetections, canonical: CanonicalFace, min_presence: float = CONFIDENT_PRESENCE) -> np.ndarray:
    """``(N, 3)`` float32 ``(pitch, yaw, roll)`` degrees for every face whose mesh presence is at least
    ``min_presence``; NaN rows for the others (no mesh, or a mesh FaceMesh doubts)."""
    poses = np.full((len(faces), 3), np.nan, np.float32)
    if faces.meshes is None:
        return poses
    for row in np.nonzero(confident_meshes(faces.mesh_scores, len(faces), min_presence))[0]:
        poses[row] = head_pose(faces.meshes[row], canonical)
    return poses
