"""Batched inference with the torch network: images of any size in, one :class:`FaceDetections` each out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from facelocal.config import SERVE_POSTPROCESS, ModelConfig, PostprocessConfig, get_config
from facelocal.facemesh import MESH_MIN_FACE, NUM_VERTICES, mesh_eligible, mesh_faces, to_unit_float
from facelocal.models.decoded import DecodedRetinaFace
from facelocal.models.facemesh import FaceMeshNet, load_facemesh
from facelocal.models.retinaface import RetinaFace, load_pretrained
from facelocal.postprocess import select_faces
from facelocal.preprocess import ResizePolicy, to_network_input
from facelocal.types import FaceDetections
from facelocal.weights import preset_for


class Detector:
    """Runs a :class:`RetinaFace` over RGB images.

    Images whose canvases share a shape (always so under a letterbox policy) go through the network as one
    batch; others are grouped by shape, so no image is padded beyond its own canvas.

    With a ``mesh`` model (:class:`~facelocal.models.facemesh.FaceMeshNet`, see ``from_weights(mesh_weights=)``)
    every face whose longer box side is at least ``mesh_min_face`` pixels also gets FaceMesh's 468 vertices and
    presence score (``FaceDetections.meshes`` / ``mesh_scores``; NaN for smaller faces).
    """

    def __init__(
        self,
        model: RetinaFace,
        postprocess: PostprocessConfig = SERVE_POSTPROCESS,
        resize: ResizePolicy = ResizePolicy(),
        max_batch_size: int = 16,
        mesh: FaceMeshNet | None = None,
        mesh_min_face: float = MESH_MIN_FACE,
    ) -> None:
        self.network = DecodedRetinaFace(model.eval())
        self.postprocess = postprocess
        self.resize = resize
        self.max_batch_size = max_batch_size
        self.mesh = None if mesh is None else mesh.eval()
        self.mesh_min_face = mesh_min_face

    @property
    def config(self) -> ModelConfig:
        return self.network.model.config

    @classmethod
    def from_weights(
        cls,
        weights: str | Path,
        config: str | ModelConfig | None = None,
        mesh_weights: str | Path | None = None,
        **kwargs,
    ) -> Detector:
        """Load a checkpoint in the public format (``strict=True``) and wrap it; with ``mesh_weights`` (MediaPipe's
        ``face_landmark.tflite``) also the FaceMesh stage.

        Without ``config`` the preset comes from the file (:func:`facelocal.weights.preset_for`).
        """
        if not isinstance(config, ModelConfig):
            config = get_config(preset_for(weights, config))
        mesh = load_facemesh(mesh_weights) if mesh_weights is not None else None
        return cls(load_pretrained(config, weights), mesh=mesh, **kwargs)

    @torch.inference_mode()
    def detect(self, images: Sequence[np.ndarray]) -> list[FaceDetections]:
        """Find faces in ``(H, W, 3)`` uint8 RGB images; results come back in input order."""
        placements = [self.resize.plan(image.shape[1], image.shape[0]) for image in images]
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, placement in enumerate(placements):
            groups[(placement.canvas_h, placement.canvas_w)].append(index)
        results: list[FaceDetections | None] = [None] * len(images)
        for indices in groups.values():
            for start in range(0, len(indices), self.max_batch_size):
                chunk = indices[start : start + self.max_batch_size]
                batch = np.stack([to_network_input(images[i], placements[i]) for i in chunk])
                boxes, scores, landmarks = (t.numpy() for t in self.network(torch.from_numpy(batch)))
                for row, i in enumerate(chunk):
                    height, width = images[i].shape[:2]
                    results[i] = select_faces(
                        boxes[row], scores[row], landmarks[row], placements[i], width, height, self.postprocess
                    )
        if self.mesh is not None:
            results = [self.add_meshes(image, faces) for image, faces in zip(images, results)]
        return results

    @torch.inference_mode()
    def add_meshes(self, rgb: np.ndarray, faces: FaceDetections) -> FaceDetections:
        """``faces`` of ``rgb`` with FaceMesh vertices and presence scores (NaN for faces under ``mesh_min_face``)."""
        if self.mesh is None:
            raise ValueError("this Detector has no mesh model (Detector.from_weights(..., mesh_weights=PATH))")
        meshes = np.full((len(faces), NUM_VERTICES, 3), np.nan, np.float32)
        mesh_scores = np.full((len(faces),), np.nan, np.float32)
        eligible = np.nonzero(mesh_eligible(faces.boxes, self.mesh_min_face))[0]
        if len(eligible):
            def infer(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                vertices, logits = self.mesh(torch.from_numpy(to_unit_float(crops)))
                return vertices.numpy(), logits.numpy()

            meshes[eligible], mesh_scores[eligible] = mesh_faces(
                rgb, faces.boxes[eligible], faces.landmarks[eligible], infer, max_batch=self.max_batch_size
            )
        return FaceDetections(faces.boxes, faces.scores, faces.landmarks, faces.width, faces.height, meshes, mesh_scores)
