"""The detection core both front ends share: decode, validate, batch, infer, post-process, shape the result."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import cast

import numpy as np

from facelocal.config import PostprocessConfig
from facelocal.contract import INPUT_DTYPE
from facelocal.detections import FaceDetections
from facelocal.postprocess import select_faces
from facelocal.preprocess import ResizePolicy, to_canvas
from facelocal.tta import View
from facelocal.tta_ops import flip_image
from service.alignment import align_face, encode_png
from service.backends.base import InferenceBackend
from service.batcher import BatchOutput, MicroBatcher
from service.errors import ServiceError, internal_error, queue_full, unavailable, validation_error
from service.images import decode
from service.mesh import MeshStage
from service.metrics import ServiceMetrics
from service.schemas import DetectOptions, Face, ImageResult, ModelInfo, Timings
from service.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class _View:
    """One view of the image (:meth:`facelocal.tta.TTAPlan.views`) and its ``(3, H, W)`` canvas."""

    view: View
    tensor: np.ndarray


@dataclass
class _Prepared:
    """An image's size and views: the image fitted to ``max_size`` first, then any test-time augmentations.

    ``rgb`` (the decoded pixels) is kept only when crops or meshes are to be cut from it, or a two-pass
    test-time augmentation may need more views of it.
    """

    width: int
    height: int
    rgb: np.ndarray | None
    views: list[_View]
    decode_ms: float

    def image(self) -> np.ndarray:
        """The decoded ``(H, W, 3)`` RGB pixels, where :meth:`DetectionCore._prepare` kept them."""
        if self.rgb is None:
            raise RuntimeError("the decoded image was released before a stage that needs it")
        return self.rgb


class PixelBudget:
    """Decoded pixels held at once, over all requests: a decode that would go past ``limit`` is refused with
    ``queue_full`` before it starts, so memory follows the budget whatever the images' sizes and formats."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        # Taken in the CPU pool's threads, given back there or on the event loop.
        self._lock = threading.Lock()

    def hold(self) -> PixelHold:
        return PixelHold(self)

    def take(self, hold: PixelHold, pixels: int) -> None:
        with self._lock:
            # A released hold belongs to a request that has been answered or cancelled while its decode was
            # still queued in the pool: that decode must not take pixels nobody would give back.
            if hold.released or self._used + pixels > self.limit:
                raise queue_full()
            self._used += pixels
            hold.pixels += pixels

    def release(self, hold: PixelHold) -> None:
        with self._lock:
            self._used -= hold.pixels
            hold.pixels = 0
            hold.released = True


@dataclass
class PixelHold:
    """The pixels one image holds in a :class:`PixelBudget`; once released it takes no more."""

    budget: PixelBudget
    pixels: int = 0
    released: bool = False

    def take(self, pixels: int) -> None:
        self.budget.take(self, pixels)

    def release(self) -> None:
        self.budget.release(self)


class DetectionCore:
    """Turns image bytes into :class:`ImageResult`; REST and gRPC are thin layers over it.

    CPU work (decoding, resizing onto canvases, NMS, crops) runs in a thread pool and inference in the backend's
    own thread, so the event loop only moves requests around.
    """

    def __init__(self, settings: Settings, backend: InferenceBackend, metrics: ServiceMetrics | None = None) -> None:
        self.settings = settings
        self.backend = backend
        self.metrics = metrics or ServiceMetrics()
        self.batcher = MicroBatcher(
            backend.infer,
            self.metrics.detector,
            max_batch_size=settings.max_batch_size,
            max_delay_ms=settings.max_delay_ms,
            max_queue=settings.max_queue,
            max_in_flight=settings.max_batches_in_flight or backend.batches_in_flight,
        )
        self._executor = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="facelocal-cpu")
        # FaceMesh on the detected faces (return_mesh), with a batcher of its own.
        self.mesh = MeshStage(settings, self.metrics)
        self._ready = False
        # Images admitted and not yet answered (decoding, queued, in a batch, post-processing). Capping them
        # bounds memory before decoding too, not only in the batcher queue; the pixel budget bounds what their
        # decoded pixels take, however large each one is.
        self._admitted = 0
        self._admission_limit = settings.max_queue + settings.max_batch_size
        self._pixels = PixelBudget(settings.max_pixels_in_flight)
        # One face past the largest cap survives NMS, so that ``truncated`` can tell a cut result from an exact one.
        self._post_nms_top_k = max(PostprocessConfig.post_nms_top_k, settings.max_faces + 1)

    @property
    def canvas_size(self) -> int:
        """The default ``max_size``: the long side images are fitted to (a fixed-canvas model: its canvas)."""
        return self.backend.fixed_canvas or self.settings.canvas_size

    @property
    def max_size_limit(self) -> int:
        """The largest ``max_size`` a request may ask for (a fixed-canvas model: its canvas)."""
        return self.backend.fixed_canvas or self.settings.max_size_limit

    @property
    def ready(self) -> bool:
        """True once the warm-up inference has passed (and until :meth:`stop`)."""
        return self._ready

    async def check_ready(self) -> bool:
        return self._ready and await self.backend.ready()

    async def start(self) -> None:
        """Start the batcher and run one warm-up inference; ready only if it succeeds."""
        self.batcher.start()
        warm_up = np.zeros((1, 3, self.canvas_size, self.canvas_size), INPUT_DTYPE)
        boxes, scores, landmarks = await self.backend.infer(warm_up)
        if boxes.shape[:2] != scores.shape or landmarks.shape[:2] != scores.shape:
            raise RuntimeError(f"backend outputs disagree: {boxes.shape}, {scores.shape}, {landmarks.shape}")
        await self.mesh.start()
        self._ready = True

    async def stop(self) -> None:
        """Stop taking work and finish every queued image."""
        self._ready = False
        await self.batcher.stop()
        await self.mesh.stop()
        self._executor.shutdown(wait=True)

    def model_infos(self) -> list[ModelInfo]:
        """The detector, then the mesh model when one is configured (``GET /v1/models``, ``ListModels``)."""
        mesh = self.mesh.model_info()
        return [self.model_info()] + ([mesh] if mesh is not None else [])

    def model_info(self) -> ModelInfo:
        return ModelInfo(
            name=self.backend.model_name,
            backend=self.backend.name,
            has_dense=self.backend.has_dense or self.mesh.ready,
            canvas_size=self.canvas_size,
            max_batch_size=self.settings.max_batch_size,
            ready=self._ready,
        )

    def validate_options(self, options: DetectOptions) -> None:
        """Reject options this model cannot honour (422) before any work is done."""
        self.mesh.check(options)  # return_mesh needs a working mesh model: 422 mesh_unavailable otherwise
        if options.max_size is not None and options.max_size > self.max_size_limit:
            raise validation_error(
                f"max_size {options.max_size} is above this server's limit of {self.max_size_limit} px",
                code="max_size_too_large",
            )

    def check_capacity(self) -> None:
        """503 when an image would not be admitted now: cheap, so front ends can ask before reading a body."""
        if not self._ready:
            raise unavailable("the model is still warming up", code="not_ready")
        if self._admitted >= self._admission_limit:
            raise queue_full()

    async def detect(self, data: bytes, options: DetectOptions) -> ImageResult:
        """Faces in one encoded image; raises :class:`ServiceError` for anything the client got wrong, and
        ``internal_error`` (500, logged) for anything else."""
        self.validate_options(options)
        self.check_capacity()
        self._admitted += 1
        pixels = self._pixels.hold()
        try:
            loop = asyncio.get_running_loop()
            prepared = await loop.run_in_executor(self._executor, self._prepare, data, options, pixels)
            # Submitted together, the views of one image usually share one inference.
            outputs = await asyncio.gather(*(self.batcher.submit(view.tensor) for view in prepared.views))
            if options.tta_plan.zoom is not None:  # a two-pass plan: its follow-up views depend on the faces found
                follow_up = await loop.run_in_executor(self._executor, self._follow_up, prepared, outputs[0], options)
                prepared.views += follow_up
                outputs += await asyncio.gather(*(self.batcher.submit(view.tensor) for view in follow_up))
            # The mesh stage crops from each face's box and landmarks, so it needs the landmarks even when the
            # client does not (it drops them again).
            finish_options = options.model_copy(update={"return_landmarks": True}) if options.return_mesh else options
            result = await loop.run_in_executor(self._executor, self._finish, prepared, outputs, finish_options)
            if options.return_mesh:
                result = await self.mesh.add_meshes(prepared.image(), result, options, self._executor)
            return result
        except ServiceError:
            raise
        except Exception as exc:
            logger.exception("detection failed")
            raise internal_error() from exc
        finally:
            pixels.release()
            self._admitted -= 1

    async def detect_batch(
        self, items: Sequence[bytes | ServiceError], options: DetectOptions
    ) -> list[ImageResult | ServiceError]:
        """Every image on its own: a bad one gets its error, the others their results (in input order). An item
        that is already an error (unreadable upload, bad base64) stays that item's answer.

        The images enter the batcher together, so they usually share inferences.
        """
        self.validate_options(options)
        if len(items) > self.settings.max_batch_images:
            raise validation_error(
                f"{len(items)} images in one batch; the limit is {self.settings.max_batch_images}",
                code="too_many_images",
            )
        outcomes = await asyncio.gather(*(self._detect_item(item, options) for item in items), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, ServiceError):
                raise outcome  # cancellation: the caller went away
        return cast(list[ImageResult | ServiceError], outcomes)

    async def _detect_item(self, item: bytes | ServiceError, options: DetectOptions) -> ImageResult:
        if isinstance(item, ServiceError):
            raise item
        return await self.detect(item, options)

    def _prepare(self, data: bytes, options: DetectOptions, pixels: PixelHold) -> _Prepared:
        started = time.perf_counter()
        max_size = options.max_size or self.canvas_size
        # Crops and meshes are cut from the full-size image; without them, no view is larger than max_size.
        keep_image = options.return_crops or options.return_mesh
        cover = None if keep_image else max_size
        decoded = decode(data, self.settings.max_pixels, cover, reserve=pixels.take)
        rgb: np.ndarray | None = decoded.rgb
        plan = options.tta_plan
        fit = ResizePolicy("fit", max_size)
        views = _canvases(decoded.rgb, self._fit(plan.views(decoded.width, decoded.height, fit), max_size))
        # A two-pass plan's follow-up views are drawn from the decoded pixels too.
        if not keep_image and plan.zoom is None:
            rgb = None
            pixels.release()
        return _Prepared(decoded.width, decoded.height, rgb, views, (time.perf_counter() - started) * 1000.0)

    def _follow_up(self, prepared: _Prepared, base: BatchOutput, options: DetectOptions) -> list[_View]:
        """The views a two-pass plan adds after the first view found ``base`` (the same max_size rule)."""
        width, height = prepared.width, prepared.height
        faces = _view_faces(base, prepared.views[0].view, width, height, self._per_view(options))
        views = options.tta_plan.follow_up_views(width, height, faces)
        return _canvases(prepared.image(), self._fit(views, options.max_size or self.canvas_size))

    def _per_view(self, options: DetectOptions) -> PostprocessConfig:
        """How each view's output becomes faces, before the views are voted (:meth:`TTAPlan.view_threshold`)."""
        return PostprocessConfig(
            score_threshold=options.tta_plan.view_threshold(options.score_threshold),
            nms_threshold=options.nms_threshold,
            post_nms_top_k=self._post_nms_top_k,
        )

    def _fit(self, views: list[View], max_size: int) -> list[View]:
        """``views`` (a plan's, the image's long side fitted to ``max_size``, never upscaled, first) each on its
        canvas: the view's size rounded up to 32 px, or the model's fixed square. A view whose long side exceeds
        ``max_size`` (a multi-scale or 2x view) is skipped rather than tiled."""
        fixed = self.backend.fixed_canvas
        return [
            replace(
                view,
                placement=replace(view.placement, canvas_w=fixed, canvas_h=fixed) if fixed else view.placement.padded(),
            )
            for view in views
            if max(view.placement.resized_w, view.placement.resized_h) <= max_size
        ]

    def _face_limit(self, options: DetectOptions) -> int:
        """The most faces one image returns: the request's ``max_faces``, capped by ``max_faces`` (or by
        ``max_crops`` with crops, the costly part of a reply) from the settings."""
        cap = self.settings.max_crops if options.return_crops else self.settings.max_faces
        return min(options.max_faces or cap, cap)

    def _finish(self, prepared: _Prepared, outputs: list[BatchOutput], options: DetectOptions) -> ImageResult:
        started = time.perf_counter()
        width, height = prepared.width, prepared.height
        config = self._per_view(options)
        views = [prepared_view.view for prepared_view in prepared.views]
        detections = [
            _view_faces(output, view, width, height, config) for view, output in zip(views, outputs, strict=True)
        ]
        faces = options.tta_plan.merge(views, detections, config.post_nms_top_k, options.score_threshold)
        faces, truncated = filter_faces(faces, options.min_face_size, self._face_limit(options))
        # The views ran concurrently, so the image waited as long as its slowest one.
        slowest = max(outputs, key=lambda output: output.queue_ms + output.inference_ms)
        result_faces = [
            Face(
                box=entry["box"],
                score=entry["score"],
                landmarks=entry["landmarks"] if options.return_landmarks else None,
                crop=encode_png(align_face(prepared.image(), points)) if options.return_crops else None,
            )
            for entry, points in zip(faces.faces(), faces.landmarks, strict=True)
        ]
        return ImageResult(
            width=width,
            height=height,
            model=self.backend.model_name,
            faces=result_faces,
            truncated=truncated,
            timings_ms=Timings(
                decode=round(prepared.decode_ms, 3),
                queue=round(slowest.queue_ms, 3),
                inference=round(slowest.inference_ms, 3),
                postprocess=round((time.perf_counter() - started) * 1000.0, 3),
            ),
        )


def _view_faces(output: BatchOutput, view: View, width: int, height: int, config: PostprocessConfig) -> FaceDetections:
    """The faces one view's inference found, in the ``width x height`` image's pixels (mirrored for a mirrored
    view, as :meth:`TTAPlan.merge` expects)."""
    boxes, scores, landmarks = output.rows
    return select_faces(boxes, scores, landmarks, view.placement, width, height, config)


def _canvases(rgb: np.ndarray, views: Sequence[View]) -> list[_View]:
    """Each view of the ``(H, W, 3)`` RGB image with its canvas (the mirror made once, if any view needs it)."""
    mirrored = np.ascontiguousarray(flip_image(rgb)) if any(view.mirrored for view in views) else rgb
    return [_View(view, to_canvas(mirrored if view.mirrored else rgb, view.placement)) for view in views]


def filter_faces(faces: FaceDetections, min_face_size: float, limit: int) -> tuple[FaceDetections, bool]:
    """Drop faces whose shorter box side is under ``min_face_size`` pixels, then keep the ``limit`` best; also
    whether the limit left any out.

    ``faces`` are sorted by descending score, so the first ones are the best.
    """
    sides = np.minimum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1])
    # In float64: a huge min_face_size would overflow the float32 sides' type.
    large_enough = np.nonzero(sides >= np.float64(min_face_size))[0]
    return faces.select(large_enough[:limit]), len(large_enough) > limit
