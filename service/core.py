"""The detection core both front ends share: decode, validate, batch, infer, post-process, shape the result."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import replace
from functools import partial
from typing import Protocol, TypeVar, cast

import numpy as np

from facelocal.anonymize import anonymize
from facelocal.config import PostprocessConfig
from facelocal.contract import INPUT_DTYPE
from facelocal.detections import FaceDetections
from facelocal.face_analysis import analyze_faces
from facelocal.pipeline import Inference, Steps, advance, detect_steps, fit_views, mesh_steps
from facelocal.pose import POSE_MESH_REFINE
from facelocal.preprocess import ResizePolicy
from service.alignment import align_face, encode_png
from service.backends.base import InferenceBackend
from service.batcher import BatchOutput, MicroBatcher
from service.budget import Budget, Hold
from service.errors import ServiceError, internal_error, queue_full, unavailable, validation_error
from service.images import decode, encode_like
from service.mesh import MeshStage
from service.metrics import ServiceMetrics
from service.results import AnonymizedResult, DetectionResult
from service.schemas import AnonymizeOptions, DetectOptions, ModelInfo, Timings
from service.settings import Settings

logger = logging.getLogger(__name__)

# Whether the request being served comes from the only client connected, as far as its front end can tell (REST:
# one open connection). Only such a request may hold the event loop for its inference (see DetectionCore._infer):
# another client's request could otherwise be waiting unread behind it, and under steady load from two clients
# every request would run alone, none overlapping another's decoding. Unset (in-process callers, gRPC, whose calls
# arrive through gRPC's own threads): it may not.
only_client: ContextVar[bool] = ContextVar("only_client", default=False)


class _Timed(Protocol):
    timings: Timings


# What one image's steps return: a DetectionResult, or an AnonymizedResult.
ResultT = TypeVar("ResultT", bound=_Timed)

# Width:height of the photos most often sent (phones 4:3 and 16:9, cameras 3:2, squares), either way up.
COMMON_ASPECTS = ((4, 3), (3, 4), (16, 9), (9, 16), (3, 2), (2, 3), (1, 1))


class DetectionCore:
    """Turns image bytes into :class:`~service.results.DetectionResult`; REST and gRPC are thin layers over it.

    An image takes the library's steps (:mod:`facelocal.pipeline`, as :class:`facelocal.detector.Detector` does):
    their CPU work (decoding, resizing onto canvases, NMS, voting, crops) runs in a thread pool, and each
    inference they ask for goes through a micro-batcher (the detector's, or the mesh stage's), so the event loop
    only moves requests around.
    """

    def __init__(self, settings: Settings, backend: InferenceBackend, metrics: ServiceMetrics | None = None) -> None:
        self.settings = settings
        self.backend = backend
        self.metrics = metrics or ServiceMetrics()
        self.batcher = MicroBatcher(
            backend.infer,
            self.metrics.detector,
            max_batch_size=settings.max_batch_size,
            max_queue=settings.max_queue,
            max_in_flight=settings.max_batches_in_flight or backend.batches_in_flight,
            infer_here=backend.infer_here,
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
        self._pixels = Budget(settings.max_pixels_in_flight)
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
        if self.backend.name == "openvino" and self.backend.fixed_canvas is None:
            await self._warm_common_canvases()
        await self.mesh.start()
        self._ready = True

    async def _warm_common_canvases(self) -> None:
        """Run the canvases of the commonest photo shapes at the default ``max_size`` twice each: OpenVINO's first
        run of a shape costs 5-10 warm ones, and the second has it compile a model for the shape (in the
        background, :class:`facelocal.runtime.OpenVinoForward`), so the first photos of those shapes run warm."""
        fit = ResizePolicy("fit", self.canvas_size)
        for width, height in COMMON_ASPECTS:
            placement = fit.plan(width * 1000, height * 1000)
            canvas = np.zeros((1, 3, placement.canvas_h, placement.canvas_w), INPUT_DTYPE)
            for _ in range(2):
                await self.backend.infer(canvas)

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
            precision=self.backend.precision,
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

    async def detect(self, data: bytes, options: DetectOptions) -> DetectionResult:
        """Faces in one encoded image; raises :class:`ServiceError` for anything the client got wrong, and
        ``internal_error`` (500, logged) for anything else."""
        return await self._admit(partial(self._steps, data, options), options, self._keeps_image(options))

    async def anonymize(self, data: bytes, options: AnonymizeOptions) -> AnonymizedResult:
        """One encoded image with every face covered, in its own format; errors as :meth:`detect`'s."""
        detect = options.detect_options(self.max_size_limit)
        return await self._admit(partial(self._anonymize_steps, data, options, detect), detect, True)

    async def _admit(
        self, make_steps: Callable[[Hold], Steps[ResultT]], options: DetectOptions, keeps_image: bool
    ) -> ResultT:
        """Run one image's steps once it is admitted (options valid, room in the queue and the pixel budget)."""
        self.validate_options(options)
        self.check_capacity()
        self._admitted += 1
        pixels = self._pixels.hold()
        try:
            return await self._run(make_steps(pixels), options, pixels, keeps_image)
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
    ) -> list[DetectionResult | ServiceError]:
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
        return cast(list[DetectionResult | ServiceError], outcomes)

    async def _detect_item(self, item: bytes | ServiceError, options: DetectOptions) -> DetectionResult:
        if isinstance(item, ServiceError):
            raise item
        return await self.detect(item, options)

    def _detected(
        self, data: bytes, options: DetectOptions, pixels: Hold, keep_image: bool
    ) -> Steps[tuple[np.ndarray | None, FaceDetections, bool]]:
        """Decode, the library's detection (:func:`facelocal.pipeline.detect_steps`) on this server's canvases,
        then the request's face filters: the full-size pixels when ``keep_image``, the faces (which know the
        image's size), and whether the face limit cut them."""
        max_size = options.max_size or self.canvas_size
        # Crops, meshes and quality are cut from the full-size image; without them, no view exceeds max_size.
        decoded = decode(data, self.settings.max_pixels, None if keep_image else max_size, reserve=pixels.take)
        postprocess = PostprocessConfig(
            score_threshold=options.score_threshold,
            nms_threshold=options.nms_threshold,
            post_nms_top_k=self._post_nms_top_k,
        )
        fit = partial(fit_views, max_size=max_size, fixed_canvas=self.backend.fixed_canvas)
        detecting = detect_steps(
            decoded.rgb,
            (decoded.width, decoded.height),
            ResizePolicy("fit", max_size),
            postprocess,
            options.tta_plan,
            fit,
        )
        rgb = decoded.rgb if keep_image else None  # the detection steps hold the pixels as long as they need them
        del decoded
        faces = yield from detecting
        faces, truncated = filter_faces(faces, options.min_face_size, self._face_limit(options))
        return rgb, faces, truncated

    def _keeps_image(self, options: DetectOptions) -> bool:
        return options.return_crops or options.return_quality or self.mesh.runs_for(options)

    def _steps(self, data: bytes, options: DetectOptions, pixels: Hold) -> Steps[DetectionResult]:
        """One image's steps: the detection, then meshes, pose, quality and crops as asked."""
        rgb, faces, truncated = yield from self._detected(data, options, pixels, self._keeps_image(options))
        result = DetectionResult(
            faces.width, faces.height, self.backend.model_name, faces, truncated, landmarks=options.return_landmarks
        )
        meshing = self.mesh.runs_for(options)
        posed = meshing and (options.return_pose or options.return_quality)
        if meshing:
            assert rgb is not None
            refine = POSE_MESH_REFINE if posed else 0
            meshed = yield from mesh_steps(rgb, faces, options.mesh_min_face, self.settings.mesh_max_faces, refine)
            faces = meshed.faces
            if options.return_mesh:
                result.mesh_skipped = meshed.skipped
        canonical = self.mesh.canonical if posed else None
        analysis = analyze_faces(rgb, faces, options.landmarks, canonical, options.return_quality)
        # The vertices travel only when asked for; the other options have used them by now.
        result.faces = analysis.faces if options.return_mesh else replace(analysis.faces, meshes=None, mesh_scores=None)
        result.landmark_sources = analysis.landmark_sources if options.return_landmarks else None
        result.poses = analysis.poses if options.return_pose else None
        result.quality = analysis.quality
        if options.return_crops:
            assert rgb is not None
            result.crops = [encode_png(align_face(rgb, points)) for points in result.faces.landmarks]
        return result

    def _anonymize_steps(
        self, data: bytes, options: AnonymizeOptions, detect: DetectOptions, pixels: Hold
    ) -> Steps[AnonymizedResult]:
        """One image's anonymisation: the detection ``detect`` (the options' high-recall preset), meshes when this
        server has the mesh model (faces with a confident one are covered on its oval), the library's
        :func:`facelocal.anonymize.anonymize`, and the pixels written back in the input's format."""
        rgb, faces, truncated = yield from self._detected(data, detect, pixels, keep_image=True)
        assert rgb is not None
        if self.mesh.ready:
            meshed = yield from mesh_steps(rgb, faces, detect.mesh_min_face, self.settings.mesh_max_faces)
            faces = meshed.faces
        covered = anonymize(rgb, faces, options.mode)
        image, media_type = encode_like(covered.image, data)
        return AnonymizedResult(image, media_type, faces, covered.regions, covered.region_kinds, truncated)

    async def _run(self, steps: Steps[ResultT], options: DetectOptions, pixels: Hold, keeps_image: bool) -> ResultT:
        """Drive ``steps``: their CPU work in the pool, each inference through its micro-batcher."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        # A lone image (nothing else admitted) is decoded on the event loop, which would only wait for it: two
        # thread hand-offs fewer on the path of an idle server's request. With company, decoding runs in the
        # pool, in parallel with other images' inference and the event loop's HTTP work.
        if self._admitted == 1:
            inference, result = advance(steps, None)
        else:
            inference, result = await loop.run_in_executor(self._executor, advance, steps, None)
        decode_ms = (time.perf_counter() - started) * 1000.0
        if not keeps_image and options.tta_plan.zoom is None:
            pixels.release()  # the canvases are made and nothing will look at the pixels again
        # One view's faces without crops or meshes take a fraction of a millisecond and hold the GIL anyway: done
        # on the event loop, they save two thread hops (a millisecond or more on a busy machine). Voting many
        # views, cutting crops and meshes run in the pool.
        light = not (keeps_image or options.tta_plan.enabled)
        detector: list[BatchOutput] = []
        postprocess_ms, mesh_started = 0.0, None
        while inference is not None:
            if inference.model == "mesh" and mesh_started is None:
                mesh_started = time.perf_counter()
            outputs = await self._infer(inference)
            if inference.model == "detector":
                detector += outputs
            step_started = time.perf_counter()
            rows = [output.rows for output in outputs]
            if light:
                inference, result = advance(steps, rows)
            else:
                inference, result = await loop.run_in_executor(self._executor, advance, steps, rows)
            if mesh_started is None:
                postprocess_ms += (time.perf_counter() - step_started) * 1000.0
        assert result is not None
        # The views ran concurrently, so the image waited as long as its slowest one.
        slowest = max(detector, key=lambda output: output.queue_ms + output.inference_ms)
        result.timings = Timings(
            decode=round(decode_ms, 3),
            queue=round(slowest.queue_ms, 3),
            inference=round(slowest.inference_ms, 3),
            postprocess=round(postprocess_ms, 3),
            mesh=None if mesh_started is None else round((time.perf_counter() - mesh_started) * 1000.0, 3),
        )
        return result

    async def _infer(self, inference: Inference) -> list[BatchOutput]:
        """Each input of ``inference`` through its model's batcher; submitted together, they usually share one
        batch."""
        batcher = self.batcher if inference.model == "detector" else self.mesh.batcher
        if self._admitted == 1 and only_client.get() and batcher.runs_here:
            # A lone image (as for its decode in _run) of the only client, on an idle in-process backend, infers on
            # the event loop: two thread hand-offs fewer. The loop first runs what is ready, so that a request
            # already read reaches admission and this image is submitted to batch with it instead. (A remote
            # backend is left out before that yield: it would only delay the request.)
            await asyncio.sleep(0)
            if self._admitted == 1 and (outputs := batcher.run_here(inference.inputs)) is not None:
                return outputs
        return await asyncio.gather(*(batcher.submit(tensor) for tensor in inference.inputs))

    def _face_limit(self, options: DetectOptions) -> int:
        """The most faces one image returns: the request's ``max_faces``, capped by ``max_faces`` (or by
        ``max_crops`` with crops, the costly part of a reply) from the settings."""
        cap = self.settings.max_crops if options.return_crops else self.settings.max_faces
        return min(options.max_faces or cap, cap)


def filter_faces(faces: FaceDetections, min_face_size: float, limit: int) -> tuple[FaceDetections, bool]:
    """Drop faces whose shorter box side is under ``min_face_size`` pixels, then keep the ``limit`` best; also
    whether the limit left any out.

    ``faces`` are sorted by descending score, so the first ones are the best.
    """
    sides = np.minimum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1])
    # In float64: a huge min_face_size would overflow the float32 sides' type.
    large_enough = np.nonzero(sides >= np.float64(min_face_size))[0]
    return faces.select(large_enough[:limit]), len(large_enough) > limit
