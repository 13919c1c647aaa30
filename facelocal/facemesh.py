"""The dense face mesh stage, torch-free: crop a detected face for FaceMesh v1 and map its 468 vertices back.

FaceMesh v1 (MediaPipe's ``face_landmark.tflite``, Apache-2.0) takes a ``192 x 192`` RGB crop of one face and
returns 468 vertices ``(x, y, z)`` in crop pixels plus a face-presence logit. This module makes the crop from a
RetinaFace box and its five landmarks, and projects the vertices back into the image; the network itself runs
as ONNX (:class:`OnnxFaceMesh` here, the service's backends) or in torch (``facelocal.models.facemesh``).

Crop: centred on the box, a square of side ``1.5 x`` the longer box side, rotated so that the eye line is
level (roll from the two eye landmarks), resampled bilinearly to ``192 x 192`` (:func:`facelocal.warp.warp_affine`).
Coordinates are continuous pixels (pixel ``i`` spans ``[i, i + 1)``) in the crop and in the image, as the model uses.

Numpy and OpenCV only: the service imports this module.
"""

from __future__ import annotations

import math
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facelocal.warp import warp_affine

INPUT_SIZE = 192
NUM_VERTICES = 468
CROP_SCALE = 1.5
# Faces whose longer box side is below this many pixels get no mesh by default: FaceMesh's presence score
# falls below 0.5 for most faces under ~45-60 px, and their meshes are unreliable.
MESH_MIN_FACE = 48.0
# A mesh whose presence score reaches this is one FaceMesh is confident in, and only such meshes give a pose, the
# five points of landmarks=mesh and the anonymiser's face oval: on AFLW2000-3D the meshes below it are mostly
# profile views whose crop failed (pose MAE 25-40 degrees, 6.7 % of the faces; README, "Head pose").
CONFIDENT_PRESENCE = 0.5
TFLITE_SHA256 = "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"
# The ONNX graph facelocal exports: uint8 RGB crops in, crop-pixel vertices and the presence logit out.
ONNX_INPUT = "crops"
ONNX_OUTPUTS = ("vertices", "presence_logit")

# Mesh vertices that correspond to RetinaFace's five landmarks (the canonical FaceMesh topology; "left" and
# "right" as seen in an upright image, RetinaFace's order). Eye centre: the mean of the eye's 16-vertex lid
# contour (the pupil of a forward-looking eye sits in the middle of the opening). Nose: vertex 4, the point of
# the nose ridge; vertex 1, often called the tip, is on the tip's underside, and on the shared photos
# RetinaFace's nose point lies 0.16 inter-eye distances above it on average, 0.04 closer to vertex 4. Mouth
# corners: 61 and 291, where the upper and lower lip contours meet.
LEFT_EYE_CONTOUR = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
RIGHT_EYE_CONTOUR = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
NOSE_TIP = 4
# The outer eye corners: the roll of a crop made from a mesh (MediaPipe's landmarks-to-ROI recipe uses these two).
ROLL_VERTICES = (33, 263)
LEFT_MOUTH_CORNER = 61
RIGHT_MOUTH_CORNER = 291


@dataclass(frozen=True)
class MeshCrop:
    """Where a crop lies in its image.

    ``matrix`` ``(2, 3)`` maps crop pixels ``(u, v, 1)`` to image pixels; ``scale`` is image pixels per crop
    pixel; ``angle`` the roll in radians (the eye line's direction in the image, clockwise positive as the
    image's y axis points down).
    """

    matrix: np.ndarray
    scale: float
    angle: float


def square_crop(centre: Sequence[float], side: float, angle: float) -> MeshCrop:
    """The crop of side ``side`` image pixels centred on ``centre`` whose x axis runs at ``angle`` radians."""
    cos, sin = math.cos(angle), math.sin(angle)
    scale = max(side, 1e-3) / INPUT_SIZE
    half = INPUT_SIZE / 2.0
    cx, cy = (float(v) for v in centre)
    # image = centre + scale * R(angle) @ (crop - half)
    matrix = np.array(
        [
            [scale * cos, -scale * sin, cx - scale * half * (cos - sin)],
            [scale * sin, scale * cos, cy - scale * half * (sin + cos)],
        ],
        np.float64,
    )
    return MeshCrop(matrix, scale, angle)


def crop_geometry(box: Sequence[float], landmarks: np.ndarray, crop_scale: float = CROP_SCALE) -> MeshCrop:
    """The crop of one face: its ``box`` ``(x1, y1, x2, y2)`` and ``(5, 2)`` RetinaFace ``landmarks``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    (lx, ly), (rx, ry) = np.asarray(landmarks, np.float64)[:2]
    return square_crop(
        ((x1 + x2) / 2.0, (y1 + y2) / 2.0), crop_scale * max(x2 - x1, y2 - y1), math.atan2(ry - ly, rx - lx)
    )


def refined_geometry(mesh: np.ndarray, crop_scale: float = CROP_SCALE) -> MeshCrop:
    """The crop that a face's own ``(468, 3)`` image-pixel mesh defines, MediaPipe's recipe for the next video
    frame: roll from the outer eye corners (:data:`ROLL_VERTICES`), centred on the vertices' bounding box in
    that rolled frame, side ``crop_scale`` x its longer side.

    Why: RetinaFace's eye landmarks give a noisy roll (on the shared photos turned by 30 degrees it stays
    10 degrees short on average, up to 84 degrees off at 90) and its axis-aligned box grows as a face turns,
    so the first crop changes with the face's orientation more than the face does. The mesh's roll and extent
    follow the face; cropping again from them makes the mesh of a turned face the turned mesh (see
    ``tests/model/test_facemesh.py``)."""
    points = np.asarray(mesh, np.float64)[:, :2]
    (lx, ly), (rx, ry) = points[list(ROLL_VERTICES)]
    angle = math.atan2(ry - ly, rx - lx)
    cos, sin = math.cos(angle), math.sin(angle)
    rolled = points @ np.array([[cos, -sin], [sin, cos]])  # the vertices in the frame whose x axis is the eye line
    low, high = rolled.min(axis=0), rolled.max(axis=0)
    centre = ((low + high) / 2.0) @ np.array([[cos, sin], [-sin, cos]])  # back to image pixels
    return square_crop(centre, crop_scale * float((high - low).max()), angle)


def crop_face(image: np.ndarray, geometry: MeshCrop) -> np.ndarray:
    """The ``(192, 192, 3)`` crop (bilinear; outside the image is black) of an ``(H, W, 3)`` uint8 RGB image (or
    the ``(192, 192)`` float32 crop of an ``(H, W)`` float32 one). The model reads a uint8 crop as ``crop / 255``
    (float32 in ``[0, 1]``); the exported graph does that division itself."""
    return warp_affine(image, geometry.matrix, INPUT_SIZE)


def crop_faces(
    rgb: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray, crop_scale: float = CROP_SCALE
) -> tuple[np.ndarray, list[MeshCrop]]:
    """Crops ``(N, 192, 192, 3)`` uint8 and their geometry for ``(N, 4)`` boxes and ``(N, 5, 2)`` landmarks."""
    geometries = [crop_geometry(box, points, crop_scale) for box, points in zip(boxes, landmarks, strict=True)]
    return crop_many(rgb, geometries), geometries


def crop_many(rgb: np.ndarray, geometries: Sequence[MeshCrop]) -> np.ndarray:
    """The ``(N, 192, 192, 3)`` uint8 crops of ``rgb`` that ``geometries`` describe."""
    crops = np.zeros((len(geometries), INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    for row, geometry in enumerate(geometries):
        crops[row] = crop_face(rgb, geometry)
    return crops


def to_unit_float(crops: np.ndarray) -> np.ndarray:
    """uint8 crops as the model's float32 input in ``[0, 1]`` (what the ONNX graph computes from uint8)."""
    return crops.astype(np.float32) / np.float32(255.0)


def project_vertices(vertices: np.ndarray, geometry: MeshCrop) -> np.ndarray:
    """``(468, 3)`` crop-pixel vertices to image pixels: x, y through the crop's matrix, z scaled alike
    (relative depth in image pixels, negative towards the camera)."""
    vertices = np.asarray(vertices, np.float64).reshape(NUM_VERTICES, 3)
    out = np.empty((NUM_VERTICES, 3), np.float64)
    out[:, :2] = vertices[:, :2] @ geometry.matrix[:, :2].T + geometry.matrix[:, 2]
    out[:, 2] = vertices[:, 2] * geometry.scale
    return out.astype(np.float32)


def presence_score(logit: np.ndarray | float) -> np.ndarray:
    """Sigmoid of the presence logit: the probability that the crop shows a face."""
    logit = np.asarray(logit, np.float64)
    return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)


def confident_meshes(
    mesh_scores: np.ndarray | None, count: int, min_presence: float = CONFIDENT_PRESENCE
) -> np.ndarray:
    """``(count,)`` bool: the faces whose mesh presence (``(count,)``, NaN without a mesh) is at least
    ``min_presence``; all False without scores."""
    if mesh_scores is None:
        return np.zeros(count, bool)
    return np.nan_to_num(np.asarray(mesh_scores, np.float64), nan=-np.inf) >= min_presence


def five_points(mesh: np.ndarray, depth: bool = False) -> np.ndarray:
    """The mesh's counterparts of RetinaFace's five landmarks, ``(5, 2)`` (``(5, 3)`` with ``depth``): eye
    centres, nose tip, mouth corners."""
    mesh = np.asarray(mesh)[:, : 3 if depth else 2]
    return np.stack(
        [
            mesh[list(LEFT_EYE_CONTOUR)].mean(axis=0),
            mesh[list(RIGHT_EYE_CONTOUR)].mean(axis=0),
            mesh[NOSE_TIP],
            mesh[LEFT_MOUTH_CORNER],
            mesh[RIGHT_MOUTH_CORNER],
        ]
    )


def mesh_eligible(boxes: np.ndarray, min_face: float) -> np.ndarray:
    """Boolean mask of the faces whose longer box side is at least ``min_face`` pixels."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return sides >= min_face


# (N, 192, 192, 3) uint8 crops -> (N, 468, 3) crop-pixel vertices and (N, 1) presence logits.
MeshInfer = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def mesh_faces(
    rgb: np.ndarray,
    boxes: np.ndarray,
    landmarks: np.ndarray,
    infer: MeshInfer,
    max_batch: int = 64,
    refine: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Meshes ``(N, 468, 3)`` in image pixels and presence scores ``(N,)`` for every given face (``(N, 4)`` boxes,
    ``(N, 5, 2)`` landmarks): the pipeline's mesh step (:func:`facelocal.pipeline.mesh_steps`) on every face.

    ``refine`` more passes crop each face again from its last mesh (:func:`refined_geometry`); each costs one
    more mesh inference per face.
    """
    from facelocal.detections import FaceDetections
    from facelocal.pipeline import mesh_steps, run_steps

    height, width = rgb.shape[:2]
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    faces = FaceDetections(boxes, np.ones(len(boxes), np.float32), np.asarray(landmarks, np.float32), width, height)
    (meshed,) = run_steps([mesh_steps(rgb, faces, 0.0, refine=refine)], {"mesh": infer}, max_batch)
    assert meshed.faces.meshes is not None and meshed.faces.mesh_scores is not None
    return meshed.faces.meshes, meshed.faces.mesh_scores


class OnnxFaceMesh:
    """The exported FaceMesh graph (``facelocal export onnx --mesh``) on CPU, in ONNX Runtime or OpenVINO.

    ``rows_at_once``: how many crops go through one inference together. In ONNX Runtime one at a time is fastest
    per face: a crop's activations (590 kB at the first stage) stay in the core's cache, a batch's do not
    (``facelocal bench --mesh``: batch 24 costs ~1.4x per face on one thread). ``workers`` > 1 splits a batch's
    rows over that many threads, each running single-threaded inferences (the service's CPU mode).

    ``runtime="openvino"``: OpenVINO's CPU plugin (:class:`facelocal.runtime.OpenVinoForward`, a model compiled
    for each batch shape it sees again), about half ONNX Runtime's time per face on one thread and no slower per
    face in batches; one compiled model per worker, as an OpenVINO request serves one caller at a time.
    """

    def __init__(
        self,
        path: str | Path,
        threads: int = 0,
        rows_at_once: int | None = None,
        workers: int = 1,
        runtime: str = "onnxruntime",
    ) -> None:
        self.rows_at_once = rows_at_once
        self.workers = max(1, workers)
        self._forwards: queue.SimpleQueue[Callable[[np.ndarray], tuple[np.ndarray, ...]]] = queue.SimpleQueue()
        self.session = None  # ONNX Runtime's session (its metadata), None on OpenVINO
        if runtime == "openvino":
            from facelocal.runtime import OpenVinoForward

            for _ in range(self.workers):
                self._forwards.put(OpenVinoForward(path, threads, output_names=ONNX_OUTPUTS))
        elif runtime == "onnxruntime":
            session = self.session = _onnxruntime_session(path, threads)
            for _ in range(self.workers):  # one session serves every thread
                self._forwards.put(lambda crops: tuple(session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: crops})))
        else:
            raise ValueError(f"unknown runtime {runtime!r}: onnxruntime or openvino")
        self._pool = None
        if self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="facemesh")

    def _run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        step = self.rows_at_once or len(crops)
        forward = self._forwards.get()
        try:
            parts = [forward(crops[start : start + step]) for start in range(0, len(crops), step)]
        finally:
            self._forwards.put(forward)
        if len(parts) == 1:
            return parts[0][0], parts[0][1]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 192, 192, 3)`` uint8 RGB crops -> ``(N, 468, 3)`` vertices in crop pixels, ``(N, 1)`` logits."""
        crops = np.ascontiguousarray(crops, np.uint8)
        if self._pool is None or len(crops) < 2:
            return self._run(crops)
        shares = [share for share in np.array_split(crops, min(self.workers, len(crops))) if len(share)]
        parts = list(self._pool.map(self._run, shares))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _onnxruntime_session(path: str | Path, threads: int):
    """A CPU session of the mesh graph, checked to be facelocal's export."""
    from facelocal.runtime import onnxruntime_session

    session = onnxruntime_session(path, threads)
    names = [tensor.name for tensor in session.get_inputs()], [tensor.name for tensor in session.get_outputs()]
    if names != ([ONNX_INPUT], list(ONNX_OUTPUTS)):
        raise ValueError(f"{path} is not a facelocal FaceMesh export: inputs/outputs {names}")
    return session
