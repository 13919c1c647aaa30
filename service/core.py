"""The detection core both front ends share: decode, validate, batch, infer, post-process, shape the result."""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from facelocal.config import PostprocessConfig
from facelocal.contract import INPUT_DTYPE
from facelocal.postprocess import select_faces
from facelocal.preprocess import Placement, ResizePolicy, to_canvas
from facelocal.tta_ops import MultiScalePlan, box_voting, flip_image, unflip
from facelocal.types import FaceDetections
from service.alignment import align_face, encode_png_base64
from service.backends.base import InferenceBackend
from service.batcher import BatchOutput, MicroBatcher
from service.errors import ServiceError, queue_full, unavailable
from service.images import decode
from service.mesh import MeshStage
from service.metrics import ServiceMetrics
from service.schemas import DetectOptions, Face, ImageResult, ModelInfo, Timings
from service.settings import Settings


# IoU at which the views of test-time augmentation are voted into one face (as the paper and facelocal.tta).
TTA_VOTE_IOU = 0.4


@dataclass
class _View:
    """One way of showing the image to the network: its ``(3, S, S)`` canvas and where the image lies on it."""

    placement: Placement
    tensor: np.ndarray
    mirrored: bool


@dataclass
class _Prepared:
    """A decoded image and its views: the letterboxed image first, then any test-time augmentations."""

    rgb: np.ndarray
    views: list[_View]
    decode_ms: float


class DetectionCore:
    """Turns image bytes into :class:`ImageResult`; REST and gRPC are thin layers over it.

    CPU work (decoding, letterboxing, NMS, crops) runs in a thread pool and inference in the backend's
    own thread, so the event loop only moves requests around.
    """

    def __init__(self, settings: Settings, backend: InferenceBackend, metrics: ServiceMetrics | None = None) -> None:
        self.settings = settings
        self.backend = backend
        self.metrics = metrics or ServiceMetrics()
        canvas = backend.fixed_canvas or settings.canvas_size
        # Never upscale: small images are padded, large ones shrunk, so every image fits one canvas.
        self._resize = ResizePolicy("letterbox", canvas)
        self._batcher = MicroBatcher(
            backend,
            self.metrics,
            max_batch_size=settings.max_batch_size,
            max_delay_ms=settings.max_delay_ms,
            max_queue=settings.max_queue,
        )
        self._executor = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="facelocal-cpu")
        # FaceMesh on the detected faces (return_mesh), with a batcher of its own.
        self.mesh = MeshStage(settings, self.metrics)
        self._ready = False
        # Images admitted and not yet answered (decoding, queued, in a batch, post-processing). Capping them
        # bounds memory before decoding too, not only in the batcher queue.
        self._admitted = 0
        self._admission_limit = settings.max_queue + settings.max_batch_size

    @property
    def canvas_size(self) -> int:
        return self._resize.size

    @property
    def ready(self) -> bool:
        """True once the warm-up inference has passed (and until :meth:`stop`)."""
        return self._ready

    async def check_ready(self) -> bool:
        return self._ready and await self.backend.ready()

    async def start(self) -> None:
        """Start the batcher and run one warm-up inference; ready only if it succeeds."""
        self._batcher.start()
        warm_up = np.zeros((1, 3, self.canvas_size, self.canvas_size), INPUT_DTYPE)
        boxes, scores, landmarks = await self.backend.infer(warm_up)
        if boxes.shape[:2] != scores.shape or landmarks.shape[:2] != scores.shape:
            raise RuntimeError(f"backend outputs disagree: {boxes.shape}, {scores.shape}, {landmarks.shape}")
        await self.mesh.start()
        self._ready = True

    async def stop(self) -> None:
        """Stop taking work and finish every queued image."""
        self._ready = False
        await self._batcher.stop()
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

    async def detect(self, data: bytes, options: DetectOptions) -> ImageResult:
        """Faces in one encoded image; raises :class:`ServiceError` for anything the client got wrong."""
        self.validate_options(options)
        if not self._ready:
            raise unavailable("the model is still warming up", code="not_ready")
        if self._admitted >= self._admission_limit:
            raise queue_full()
        self._admitted += 1
        try:
            loop = asyncio.get_running_loop()
            prepared = await loop.run_in_executor(self._executor, self._prepare, data, options)
            # Submitted together, the views of one image usually share one inference.
            outputs = await asyncio.gather(*(self._batcher.submit(view.tensor) for view in prepared.views))
            # The mesh stage crops from each face's box and landmarks, so it needs the landmarks even when the
            # client does not (it drops them again).
            finish_options = options.model_copy(update={"return_landmarks": True}) if options.return_mesh else options
            result = await loop.run_in_executor(self._executor, self._finish, prepared, outputs, finish_options)
            if options.return_mesh:
                result = await self.mesh.add_meshes(prepared.rgb, result, options, self._executor)
            return result
        finally:
            self._admitted -= 1

    async def detect_batch(self, items: list[bytes], options: DetectOptions) -> list[ImageResult | ServiceError]:
        """Every image on its own: a bad one gets its error, the others their results (in input order).

        The images enter the batcher together, so they usually share inferences.
        """
        self.validate_options(options)
        outcomes = await asyncio.gather(*(self.detect(item, options) for item in items), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, ServiceError):
                raise outcome
        return list(outcomes)

    def _prepare(self, data: bytes, options: DetectOptions) -> _Prepared:
        started = time.perf_counter()
        rgb = decode(data, self.settings.max_pixels)
        placements = self._placements(rgb.shape[1], rgb.shape[0], options.tta_multiscale)
        views = [_View(placement, to_canvas(rgb, placement), mirrored=False) for placement in placements]
        if options.tta_flip:
            mirrored = np.ascontiguousarray(flip_image(rgb))
            views += [_View(placement, to_canvas(mirrored, placement), mirrored=True) for placement in placements]
        return _Prepared(rgb, views, (time.perf_counter() - started) * 1000.0)

    def _placements(self, width: int, height: int, multiscale: bool) -> list[Placement]:
        """The letterbox placement, plus with ``multiscale`` one per planned long side that fits the canvas.

        The canvas is fixed, so a scale whose long side exceeds it cannot run; it is skipped rather than tiled.
        """
        placements = [self._resize.plan(width, height)]
        if multiscale:
            canvas = self.canvas_size
            placements += [
                replace(ResizePolicy("long", side).plan(width, height), canvas_w=canvas, canvas_h=canvas)
                for side in MultiScalePlan().long_sides(width, height)
                if side <= canvas
            ]
        return placements

    def _finish(self, prepared: _Prepared, outputs: list[BatchOutput], options: DetectOptions) -> ImageResult:
        started = time.perf_counter()
        height, width = prepared.rgb.shape[:2]
        config = PostprocessConfig(score_threshold=options.score_threshold, nms_threshold=options.nms_threshold)
        detections = []
        for view, output in zip(prepared.views, outputs):
            found = select_faces(output.boxes, output.scores, output.landmarks, view.placement, width, height, config)
            detections.append(unflip(found) if view.mirrored else found)
        faces = detections[0] if len(detections) == 1 else box_voting(detections, TTA_VOTE_IOU, config.post_nms_top_k)
        faces = filter_faces(faces, options.min_face_size, options.max_faces)
        # The views ran concurrently, so the image waited as long as its slowest one.
        slowest = max(outputs, key=lambda output: output.queue_ms + output.inference_ms)
        result_faces = [
            Face(
                box=entry["box"],
                score=entry["score"],
                landmarks=entry["landmarks"] if options.return_landmarks else None,
                crop=encode_png_base64(align_face(prepared.rgb, points)) if options.return_crops else None,
            )
            for entry, points in zip(faces.faces(), faces.landmarks)
        ]
        return ImageResult(
            width=width,
            height=height,
            model=self.backend.model_name,
            faces=result_faces,
            timings_ms=Timings(
                decode=round(prepared.decode_ms, 3),
                queue=round(slowest.queue_ms, 3),
                inference=round(slowest.inference_ms, 3),
                postprocess=round((time.perf_counter() - started) * 1000.0, 3),
            ),
        )


def filter_faces(faces: FaceDetections, min_face_size: float, max_faces: int | None) -> FaceDetections:
    """Drop faces whose shorter box side is under ``min_face_size`` pixels, then keep the ``max_faces`` best.

    ``faces`` are sorted by descending score, so the first ones are the best.
    """
    sides = np.minimum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1])
    kept = np.nonzero(sides >= min_face_size)[0][:max_faces]
    return faces.select(kept)
