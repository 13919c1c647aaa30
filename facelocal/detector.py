"""Batched inference: images of any size in, one :class:`FaceDetections` each out, on torch, ONNX Runtime or
OpenVINO."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from facelocal.config import SERVE_POSTPROCESS, ModelConfig, PostprocessConfig, get_config
from facelocal.detections import FaceDetections
from facelocal.facemesh import MESH_MIN_FACE, MeshInfer, OnnxFaceMesh
from facelocal.pipeline import NO_AUGMENTATION, Steps, detect_steps, fit_views, mesh_steps, run_steps
from facelocal.preprocess import ORIGINAL_SIZE, ResizePolicy
from facelocal.runtime import Forward, exported_forward, torch_forward
from facelocal.tta import TTAPlan, View
from facelocal.weights import preset_for


class Detector:
    """Runs a decoded RetinaFace forward (:mod:`facelocal.runtime`) over RGB images.

    Each image takes the steps of :mod:`facelocal.pipeline` (the service's core takes the same ones); canvases that
    share a shape (always so under a letterbox policy) go through the network as one batch, others are grouped by
    shape, so no image is padded beyond its own canvas.

    With a ``mesh`` stage (a :data:`~facelocal.facemesh.MeshInfer`: FaceMesh in torch, see
    ``from_weights(mesh_weights=)``, or its ONNX export, ``from_onnx(mesh_model_path=)``) every face whose longer
    box side is at least ``mesh_min_face`` pixels also gets FaceMesh's 468 vertices and presence score
    (``FaceDetections.meshes`` / ``mesh_scores``; NaN for smaller faces). ``mesh_refine`` more passes crop each
    face again from its own mesh (:func:`~facelocal.facemesh.mesh_faces`): steadier under rotation, one more mesh
    inference per face each.
    """

    def __init__(
        self,
        forward: Forward,
        postprocess: PostprocessConfig = SERVE_POSTPROCESS,
        resize: ResizePolicy = ORIGINAL_SIZE,
        max_batch_size: int = 16,
        mesh: MeshInfer | None = None,
        mesh_min_face: float = MESH_MIN_FACE,
        mesh_refine: int = 0,
    ) -> None:
        self.forward = forward
        self.postprocess = postprocess
        self.resize = resize
        self.max_batch_size = max_batch_size
        self.mesh = mesh
        self.mesh_min_face = mesh_min_face
        self.mesh_refine = mesh_refine

    @classmethod
    def from_model(cls, model, **kwargs) -> Detector:
        """Torch eager over a :class:`~facelocal.models.retinaface.RetinaFace`."""
        from facelocal.models.decoded import DecodedRetinaFace

        return cls(torch_forward(DecodedRetinaFace(model.eval())), **kwargs)

    @classmethod
    def from_weights(
        cls,
        weights: str | Path,
        config: str | ModelConfig | None = None,
        mesh_weights: str | Path | None = None,
        **kwargs,
    ) -> Detector:
        """Load a checkpoint in the public format (``strict=True``) and run it with torch; with ``mesh_weights``
        (MediaPipe's ``face_landmark.tflite``) also the FaceMesh stage, in torch.

        Without ``config`` the preset comes from the file (:func:`facelocal.weights.preset_for`).
        """
        from facelocal.models.retinaface import load_pretrained

        if not isinstance(config, ModelConfig):
            config = get_config(preset_for(weights, config))
        if mesh_weights is not None:
            from facelocal.models.facemesh import load_facemesh, torch_mesh_infer

            kwargs["mesh"] = torch_mesh_infer(load_facemesh(mesh_weights))
        return cls.from_model(load_pretrained(config, weights), **kwargs)

    @classmethod
    def from_onnx(
        cls,
        model_path: str | Path,
        threads: int = 0,
        runtime: str = "onnxruntime",
        precision: str | None = None,
        mesh_model_path: str | Path | None = None,
        **kwargs,
    ) -> Detector:
        """An exported model (``facelocal export onnx`` or ``int8``, dynamic size) on ONNX Runtime or OpenVINO at
        ``precision`` (None: as the file stores it), with the FaceMesh export (``facelocal export onnx --mesh``)
        when ``mesh_model_path`` is given (on the same runtime, in fp32); needs no torch."""
        if mesh_model_path is not None:
            kwargs["mesh"] = OnnxFaceMesh(mesh_model_path, threads=threads, rows_at_once=1, runtime=runtime)
        return cls(exported_forward(model_path, runtime, threads, precision), **kwargs)

    def with_resize(self, resize: ResizePolicy) -> Detector:
        """The same network, post-processing and mesh stage under another resize policy."""
        return Detector(
            self.forward,
            self.postprocess,
            resize,
            self.max_batch_size,
            self.mesh,
            self.mesh_min_face,
            self.mesh_refine,
        )

    def detect(self, images: Sequence[np.ndarray]) -> list[FaceDetections]:
        """Find faces in ``(H, W, 3)`` uint8 RGB images; results come back in input order."""
        return run_steps([self.steps(image) for image in images], self._models(), self.max_batch_size)

    def detect_augmented(self, rgb: np.ndarray, plan: TTAPlan) -> FaceDetections:
        """Faces in one ``(H, W, 3)`` uint8 RGB image over every view of ``plan`` (this detector's resize policy
        first): the first pass's views, then the follow-up views the first view's faces call for, each view
        post-processed (threshold as :meth:`TTAPlan.view_threshold` says, NMS) before one vote. Under a
        ``letterbox:S`` or ``fit:S`` policy the views are placed as the service places them (:meth:`fit`)."""
        return run_steps([self.steps(rgb, plan)], self._models(), self.max_batch_size)[0]

    def steps(self, rgb: np.ndarray, plan: TTAPlan = NO_AUGMENTATION) -> Steps[FaceDetections]:
        """One image's way through this detector (:mod:`facelocal.pipeline`): its faces under ``plan``, then,
        with a mesh stage, their meshes."""
        height, width = rgb.shape[:2]
        faces = yield from detect_steps(rgb, (width, height), self.resize, self.postprocess, plan, self.fit)
        if self.mesh is None:
            return faces
        meshed = yield from mesh_steps(rgb, faces, self.mesh_min_face, refine=self.mesh_refine)
        return meshed.faces

    def fit(self, views: list[View]) -> list[View]:
        """``views`` as the service runs them under this detector's ``letterbox:S`` or ``fit:S`` policy
        (:func:`~facelocal.pipeline.fit_views`: a view whose long side exceeds ``S`` is skipped rather than
        tiled, the others go on the ``S`` square or a canvas of their own size rounded up to 32 px). Other
        policies keep every view as planned."""
        if self.resize.mode not in ("letterbox", "fit"):
            return views
        size = self.resize.size
        return fit_views(views, size, size if self.resize.mode == "letterbox" else None)

    def add_meshes(self, rgb: np.ndarray, faces: FaceDetections) -> FaceDetections:
        """``faces`` of ``rgb`` with FaceMesh vertices and presence scores (NaN for faces under ``mesh_min_face``)."""
        if self.mesh is None:
            raise ValueError("this Detector has no mesh stage (Detector.from_weights(..., mesh_weights=PATH))")
        steps = mesh_steps(rgb, faces, self.mesh_min_face, refine=self.mesh_refine)
        return run_steps([steps], self._models(), self.max_batch_size)[0].faces

    def _models(self) -> dict[str, Callable[[np.ndarray], Sequence[np.ndarray]]]:
        models: dict[str, Callable[[np.ndarray], Sequence[np.ndarray]]] = {"detector": self.forward}
        if self.mesh is not None:
            models["mesh"] = self.mesh
        return models
