"""Batched inference: images of any size in, one :class:`FaceDetections` each out, on torch, ONNX Runtime or
OpenVINO."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from facelocal.config import SERVE_POSTPROCESS, ModelConfig, PostprocessConfig, get_config
from facelocal.detections import FaceDetections
from facelocal.facemesh import MESH_MIN_FACE, NUM_VERTICES, MeshInfer, OnnxFaceMesh, mesh_eligible, mesh_faces
from facelocal.postprocess import select_faces
from facelocal.preprocess import ORIGINAL_SIZE, Placement, ResizePolicy, to_canvas
from facelocal.runtime import Forward, exported_forward, torch_forward
from facelocal.tta import TTAPlan, View
from facelocal.tta_ops import flip_image
from facelocal.weights import preset_for


class Detector:
    """Runs a decoded RetinaFace forward (:mod:`facelocal.runtime`) over RGB images.

    Images whose canvases share a shape (always so under a letterbox policy) go through the network as one
    batch; others are grouped by shape, so no image is padded beyond its own canvas.

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
        results = self._detect_placed(images, [self.resize.plan(image.shape[1], image.shape[0]) for image in images])
        if self.mesh is not None:
            results = [self.add_meshes(image, faces) for image, faces in zip(images, results, strict=True)]
        return results

    def detect_augmented(self, rgb: np.ndarray, plan: TTAPlan) -> FaceDetections:
        """Faces in one ``(H, W, 3)`` uint8 RGB image over every view of ``plan`` (this detector's resize policy
        first): the first pass's views, then the follow-up views the first view's faces call for, each view
        post-processed (threshold as :meth:`TTAPlan.view_threshold` says, NMS) before one vote. Under a
        ``letterbox:S`` or ``fit:S`` policy the views are placed as the service places them (:meth:`_placed`)."""
        if not plan.enabled:
            return self.detect([rgb])[0]
        height, width = rgb.shape[:2]
        per_view = replace(self.postprocess, score_threshold=plan.view_threshold(self.postprocess.score_threshold))
        views = self._placed(plan.views(width, height, self.resize))
        found = self._detect_views(rgb, views, per_view)
        follow_up = self._placed(plan.follow_up_views(width, height, found[0]))
        if follow_up:
            views, found = views + follow_up, found + self._detect_views(rgb, follow_up, per_view)
        faces = plan.merge(views, found, self.postprocess.post_nms_top_k, self.postprocess.score_threshold)
        return faces if self.mesh is None else self.add_meshes(rgb, faces)

    def _placed(self, views: list[View]) -> list[View]:
        """``views`` as the service runs them under this detector's ``letterbox:S`` or ``fit:S`` policy: a view
        whose long side exceeds ``S`` is skipped rather than tiled, the others go on the ``S`` square (letterbox)
        or a canvas of their own size rounded up to 32 px (fit). Other policies keep every view as planned."""
        if self.resize.mode not in ("letterbox", "fit"):
            return views
        size = self.resize.size
        return [
            replace(
                view,
                placement=replace(view.placement, canvas_w=size, canvas_h=size)
                if self.resize.mode == "letterbox"
                else view.placement.padded(),
            )
            for view in views
            if max(view.placement.resized_w, view.placement.resized_h) <= size
        ]

    def _detect_views(
        self, rgb: np.ndarray, views: Sequence[View], postprocess: PostprocessConfig
    ) -> list[FaceDetections]:
        """Each view's faces in ``rgb``'s pixels (mirrored views' as found on the mirrored image)."""
        mirrored = np.ascontiguousarray(flip_image(rgb)) if any(view.mirrored for view in views) else rgb
        images = [mirrored if view.mirrored else rgb for view in views]
        return self._detect_placed(images, [view.placement for view in views], postprocess)

    def _detect_placed(
        self,
        images: Sequence[np.ndarray],
        placements: Sequence[Placement],
        postprocess: PostprocessConfig | None = None,
    ) -> list[FaceDetections]:
        """Each image's faces (no meshes) with the image put on the canvas as its placement says, post-processed
        as ``postprocess`` (default: the detector's) says; placements of one canvas shape go through the network
        as one batch."""
        postprocess = postprocess or self.postprocess
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, placement in enumerate(placements):
            groups[(placement.canvas_h, placement.canvas_w)].append(index)
        results: dict[int, FaceDetections] = {}
        for indices in groups.values():
            for start in range(0, len(indices), self.max_batch_size):
                chunk = indices[start : start + self.max_batch_size]
                batch = np.stack([to_canvas(images[i], placements[i]) for i in chunk])
                boxes, scores, landmarks = self.forward(batch)
                for row, i in enumerate(chunk):
                    height, width = images[i].shape[:2]
                    results[i] = select_faces(
                        boxes[row], scores[row], landmarks[row], placements[i], width, height, postprocess
                    )
        return [results[i] for i in range(len(images))]

    def add_meshes(self, rgb: np.ndarray, faces: FaceDetections) -> FaceDetections:
        """``faces`` of ``rgb`` with FaceMesh vertices and presence scores (NaN for faces under ``mesh_min_face``)."""
        if self.mesh is None:
            raise ValueError("this Detector has no mesh stage (Detector.from_weights(..., mesh_weights=PATH))")
        meshes = np.full((len(faces), NUM_VERTICES, 3), np.nan, np.float32)
        mesh_scores = np.full((len(faces),), np.nan, np.float32)
        eligible = np.nonzero(mesh_eligible(faces.boxes, self.mesh_min_face))[0]
        if len(eligible):
            meshes[eligible], mesh_scores[eligible] = mesh_faces(
                rgb,
                faces.boxes[eligible],
                faces.landmarks[eligible],
                self.mesh,
                max_batch=self.max_batch_size,
                refine=self.mesh_refine,
            )
        return FaceDetections(
            faces.boxes, faces.scores, faces.landmarks, faces.width, faces.height, meshes, mesh_scores
        )
