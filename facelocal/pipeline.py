"""The detection pipeline, once, for the library's :class:`~facelocal.detector.Detector` and the service's core.

An image's way through the models is written here as a generator of *steps*: it yields an :class:`Inference`
(which model, and its inputs: ``(3, H, W)`` uint8 canvases or ``(192, 192, 3)`` uint8 face crops), receives
each input's output rows, and finally returns its faces. Everything between two inferences (fitting the views to
the canvas, building canvases, mirroring, post-processing each view, the test-time augmentation plan's second
pass and vote, cropping faces for the mesh and attaching the meshes) is pure numpy on :class:`FaceDetections`.

Who drives the steps decides how inferences run: :func:`run_steps` batches the inputs of many images by shape and
calls the models synchronously (the library); the service's core awaits its micro-batchers instead, with the
same steps in its CPU pool, so both give the same faces by construction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

import numpy as np

from facelocal.config import PostprocessConfig
from facelocal.detections import FaceDetections
from facelocal.facemesh import (
    NUM_VERTICES,
    crop_geometry,
    crop_many,
    mesh_eligible,
    presence_score,
    project_vertices,
    refined_geometry,
)
from facelocal.postprocess import select_faces
from facelocal.preprocess import ResizePolicy, to_canvas
from facelocal.tta import TTAPlan, View
from facelocal.tta_ops import flip_image

ModelRole = Literal["detector", "mesh"]
# One input's output rows: a canvas's ``boxes (K, 4)``, ``scores (K,)``, ``landmarks (K, 10)`` in canvas pixels,
# or a crop's ``vertices (468, 3)`` in crop pixels and presence ``logit (1,)``.
Rows = tuple[np.ndarray, ...]
T = TypeVar("T")


@dataclass
class Inference:
    """A step's request: run ``model`` on each of ``inputs`` and send back one :data:`Rows` per input."""

    model: ModelRole
    inputs: list[np.ndarray]


# A pipeline: yields inferences, is sent their rows, returns its result.
Steps = Generator[Inference, list[Rows], T]

# One view, unvoted.
NO_AUGMENTATION = TTAPlan()
# Why a face got no mesh (``MeshedFaces.skipped``).
SKIPPED_SMALL = "face_too_small"
SKIPPED_LIMIT = "mesh_limit"


def fit_views(views: Sequence[View], max_size: int, fixed_canvas: int | None = None) -> list[View]:
    """``views`` (a plan's, the image's long side fitted to ``max_size``, never upscaled, first) each on its
    canvas: the view's size rounded up to 32 px, or the model's fixed ``fixed_canvas`` square. A view whose long
    side exceeds ``max_size`` (a multi-scale or 2x view) is skipped rather than tiled."""
    return [
        replace(
            view,
            placement=replace(view.placement, canvas_w=fixed_canvas, canvas_h=fixed_canvas)
            if fixed_canvas
            else view.placement.padded(),
        )
        for view in views
        if max(view.placement.resized_w, view.placement.resized_h) <= max_size
    ]


def view_canvases(rgb: np.ndarray, views: Sequence[View]) -> list[np.ndarray]:
    """Each view's ``(3, H, W)`` uint8 canvas of the ``(h, w, 3)`` RGB image (the mirror made once, if any view
    needs it). ``rgb`` may be smaller than the size the views were planned for (a reduced JPEG decode): each
    canvas is resized from it."""
    mirrored = np.ascontiguousarray(flip_image(rgb)) if any(view.mirrored for view in views) else rgb
    return [to_canvas(mirrored if view.mirrored else rgb, view.placement) for view in views]


def view_faces(rows: Rows, view: View, size: tuple[int, int], postprocess: PostprocessConfig) -> FaceDetections:
    """The faces one view's detector rows (``boxes``, ``scores``, ``landmarks`` in canvas pixels) hold, in the
    ``size`` = ``(width, height)`` image's pixels (as found on the mirror for a mirrored view, as
    :meth:`TTAPlan.merge` expects)."""
    boxes, scores, landmarks = rows
    return select_faces(boxes, scores, landmarks, view.placement, size[0], size[1], postprocess)


def detect_steps(
    rgb: np.ndarray,
    size: tuple[int, int],
    base: ResizePolicy,
    postprocess: PostprocessConfig,
    plan: TTAPlan = NO_AUGMENTATION,
    fit: Callable[[list[View]], list[View]] = list,
) -> Steps[FaceDetections]:
    """The faces of one ``size`` = ``(width, height)`` image whose pixels are ``rgb``: the plan's first views
    (``base``'s placement first) through ``fit``, one detector inference each, each view post-processed down to
    :meth:`TTAPlan.view_threshold`; then the follow-up views those faces call for (``auto``'s 2x pass), then one
    vote at ``postprocess.score_threshold``. Without augmentation, the one view's faces."""
    width, height = size
    per_view = replace(postprocess, score_threshold=plan.view_threshold(postprocess.score_threshold))
    views = fit(plan.views(width, height, base))
    canvases = view_canvases(rgb, views)
    if plan.zoom is None:
        del rgb  # no second pass: the caller may free the pixels while the canvases are inferred
    rows = yield Inference("detector", canvases)
    found = [view_faces(row, view, size, per_view) for view, row in zip(views, rows, strict=True)]
    if plan.zoom is not None:
        follow_up = fit(plan.follow_up_views(width, height, found[0]))
        if follow_up:
            rows = yield Inference("detector", view_canvases(rgb, follow_up))
            found += [view_faces(row, view, size, per_view) for view, row in zip(follow_up, rows, strict=True)]
            views += follow_up
    return plan.merge(views, found, postprocess.post_nms_top_k, postprocess.score_threshold)


@dataclass
class MeshedFaces:
    """Faces with their meshes (:attr:`FaceDetections.meshes`, NaN for a face that got none) and, per face, why
    it got none (``None``: it has one): :data:`SKIPPED_SMALL` or :data:`SKIPPED_LIMIT`."""

    faces: FaceDetections
    skipped: list[str | None]

    @property
    def truncated(self) -> bool:
        """Whether the per-image limit left faces without a mesh."""
        return SKIPPED_LIMIT in self.skipped


def mesh_steps(
    rgb: np.ndarray, faces: FaceDetections, min_face: float, max_faces: int | None = None, refine: int = 0
) -> Steps[MeshedFaces]:
    """FaceMesh on ``faces`` of the ``(H, W, 3)`` RGB image: each face whose longer box side is at least
    ``min_face`` pixels, the ``max_faces`` best of them, is cropped from its exact box and landmarks
    (:func:`~facelocal.facemesh.crop_geometry`), one mesh inference per crop; ``refine`` more passes crop each
    face again from its last mesh (:func:`~facelocal.facemesh.refined_geometry`)."""
    eligible = mesh_eligible(faces.boxes, min_face)
    chosen = np.nonzero(eligible)[0][:max_faces]
    skipped: list[str | None] = [None if big else SKIPPED_SMALL for big in eligible]
    for index in np.nonzero(eligible)[0][len(chosen) :]:
        skipped[index] = SKIPPED_LIMIT
    meshes = np.full((len(faces), NUM_VERTICES, 3), np.nan, np.float32)
    scores = np.full((len(faces),), np.nan, np.float32)
    if len(chosen):
        geometries = [crop_geometry(faces.boxes[i], faces.landmarks[i]) for i in chosen]
        for attempt in range(refine + 1):
            if attempt:
                geometries = [refined_geometry(meshes[i]) for i in chosen]
            rows = yield Inference("mesh", list(crop_many(rgb, geometries)))
            for index, geometry, (vertices, logit) in zip(chosen, geometries, rows, strict=True):
                meshes[index] = project_vertices(vertices, geometry)
                scores[index] = presence_score(np.ravel(logit)[0])
    return MeshedFaces(replace(faces, meshes=meshes, mesh_scores=scores), skipped)


def advance(steps: Steps[T], rows: list[Rows] | None) -> tuple[Inference | None, T | None]:
    """Run ``steps`` to its next inference (sending ``rows``, the last one's outputs; None to start): that
    inference and None, or None and the result once it returns. Callable from a worker thread (a
    ``StopIteration`` cannot cross an executor's future)."""
    try:
        return steps.send(rows), None  # type: ignore[arg-type]
    except StopIteration as stop:
        return None, stop.value


def stacked(tensors: Sequence[np.ndarray]) -> np.ndarray:
    """``(B, ...)`` contiguous batch of same-shaped ``tensors``; a lone contiguous one (a canvas, megabytes) is
    viewed as a batch of one, not copied."""
    return np.ascontiguousarray(tensors[0][np.newaxis]) if len(tensors) == 1 else np.stack(tensors)


def run_batched(
    model: Callable[[np.ndarray], Sequence[np.ndarray]], inputs: Sequence[np.ndarray], max_batch: int
) -> list[Rows]:
    """Each input's output rows from ``model`` on stacked batches: inputs of one shape together, at most
    ``max_batch`` at a time, so none is padded beyond its own shape."""
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for index, tensor in enumerate(inputs):
        groups[tensor.shape].append(index)
    rows: dict[int, Rows] = {}
    for indices in groups.values():
        for start in range(0, len(indices), max_batch):
            chunk = indices[start : start + max_batch]
            outputs = model(stacked([inputs[i] for i in chunk]))
            for row, index in enumerate(chunk):
                rows[index] = tuple(output[row] for output in outputs)
    return [rows[index] for index in range(len(inputs))]


def run_steps(
    pipelines: Sequence[Steps[T]],
    models: dict[str, Callable[[np.ndarray], Sequence[np.ndarray]]],
    max_batch: int,
) -> list[T]:
    """Drive ``pipelines`` together, synchronously: at each round every pipeline's pending inference runs, those of
    one model and input shape in shared batches of up to ``max_batch``; results in input order."""
    results: dict[int, T] = {}
    pending: dict[int, Inference] = {}
    for index, steps in enumerate(pipelines):
        inference, result = advance(steps, None)
        if inference is None:
            results[index] = result  # type: ignore[assignment]
        else:
            pending[index] = inference
    while pending:
        sent: dict[int, list[Rows]] = {}
        for role in {inference.model for inference in pending.values()}:
            users = [index for index, inference in pending.items() if inference.model == role]
            inputs = [tensor for index in users for tensor in pending[index].inputs]
            rows = run_batched(models[role], inputs, max_batch)
            for index in users:
                count = len(pending[index].inputs)
                sent[index], rows = rows[:count], rows[count:]
        for index, rows in sent.items():
            inference, result = advance(pipelines[index], rows)
            if inference is None:
                del pending[index]
                results[index] = result  # type: ignore[assignment]
            else:
                pending[index] = inference
    return [results[index] for index in range(len(pipelines))]
