"""The dense mesh stage of the service: FaceMesh v1 on every detected face, batched across requests.

After detection, each face whose longer box side is at least ``mesh_min_face`` pixels (a request option,
default 48) is cropped from its exact box and landmarks (:func:`facelocal.pipeline.mesh_steps`, the library's
step: 1.5x the box, eyes level, 192x192) and its crop goes into a
micro-batcher of its own (:class:`~service.batcher.MicroBatcher`): crops from all faces of all requests in flight
share one mesh inference, as canvases do for detection. The vertices come back in image pixels with the presence score.

At most ``mesh_max_faces`` faces per image get a mesh (the best-scoring ones); the others get
``mesh_skipped="mesh_limit"`` and the image ``mesh_truncated=true``. Faces under the size get
``mesh_skipped="face_too_small"``.

Backends: in process (``mesh_model_path``, exported by ``facelocal export onnx --mesh``) on the detector's runtime,
OpenVINO or ONNX Runtime; Triton's ``triton_mesh_model`` (``model_repository/facemesh``) when it runs on
Triton. Without a mesh model, ``return_mesh``, ``landmarks=mesh`` and ``return_pose`` are refused with 422
``mesh_unavailable`` and the reason. Head pose also needs MediaPipe's canonical face (``face_geometry_path``, else
beside the FaceMesh weights the library finds): without it ``return_pose`` is 422 ``pose_unavailable``.
"""

from __future__ import annotations

import logging

import numpy as np

from facelocal.facemesh import INPUT_SIZE, NUM_VERTICES
from facelocal.pose import CanonicalFace, resolve_face_geometry
from service.batcher import MicroBatcher
from service.errors import ServiceError, validation_error
from service.metrics import ServiceMetrics
from service.schemas import DetectOptions, ModelInfo
from service.settings import Settings

log = logging.getLogger(__name__)


def create_mesh_backend(settings: Settings):
    """The mesh backend the settings ask for, or ``None`` with the reason there is none."""
    if settings.backend == "triton":
        if not settings.triton_mesh_model:
            return None, "no Triton mesh model is configured (FACELOCAL_TRITON_MESH_MODEL)"
        from service.backends.triton_mesh import TritonMeshBackend

        return TritonMeshBackend(settings), None
    path = settings.mesh_model_path
    if path is None:
        return None, "no mesh model is configured (FACELOCAL_MESH_MODEL_PATH)"
    if not path.is_file():
        if "mesh_model_path" in settings.model_fields_set:
            raise FileNotFoundError(
                f"mesh model {path} not found; export it with 'facelocal export onnx --mesh "
                f"--mesh-weights face_landmark.tflite --out {path}'"
            )
        return None, (
            f"the mesh model {path} does not exist; export it with 'facelocal export onnx --mesh' (make model does)"
        )
    from service.backends.inprocess import InProcessBackend

    return InProcessBackend.mesh(settings, path), None


def load_canonical_face(settings: Settings) -> tuple[CanonicalFace | None, str]:
    """MediaPipe's canonical face from ``face_geometry_path``, or beside the FaceMesh weights the library finds
    (``$FACELOCAL_MESH_WEIGHTS``, the weights table); None and the reason when there is none. A folder set
    explicitly must hold it."""
    folder = settings.face_geometry_path
    if folder is None:
        try:
            folder = resolve_face_geometry()
        except (FileNotFoundError, ValueError) as exc:
            return None, f"no face geometry folder is configured (FACELOCAL_FACE_GEOMETRY_PATH): {exc}"
    try:
        return CanonicalFace.load(folder), ""
    except (FileNotFoundError, ValueError) as exc:
        if settings.face_geometry_path is not None:
            raise
        return None, str(exc)


# -- the stage -----------------------------------------------------------------------------------------------


class MeshStage:
    """FaceMesh after detection: owns the mesh backend and its batcher, through which the core runs the mesh
    inferences of the library's mesh step (:func:`facelocal.pipeline.mesh_steps`)."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.backend, self._reason = create_mesh_backend(settings)
        self._mesh_batcher: MicroBatcher | None = None
        self._ready = False
        # MediaPipe's canonical face for head pose, or why there is none.
        self.canonical: CanonicalFace | None = None
        self._pose_reason = "no mesh model"
        if self.backend is not None:
            self.canonical, self._pose_reason = load_canonical_face(settings)

    @property
    def batcher(self) -> MicroBatcher:
        if self._mesh_batcher is None:
            raise RuntimeError("check() admits return_mesh only once the stage has started")
        return self._mesh_batcher

    @property
    def available(self) -> bool:
        return self.backend is not None and self._reason is None

    @property
    def ready(self) -> bool:
        """Whether ``return_mesh`` works now (a mesh model passed its warm-up)."""
        return self.available and self._ready

    @property
    def unavailable_reason(self) -> str:
        return self._reason or "the mesh model is still warming up"

    async def start(self) -> None:
        """Start the batcher and run one warm-up crop. A mesh model that fails here leaves detection serving and
        ``return_mesh`` answered with 422 and the reason."""
        if self.backend is None:
            log.info("dense mesh off: %s", self._reason)
            return
        self._mesh_batcher = MicroBatcher(
            self.backend.infer,
            self.metrics.mesh,
            name="mesh inference",
            max_batch_size=self.settings.mesh_max_batch_size,
            max_queue=self.settings.mesh_max_queue,
            max_in_flight=self.backend.batches_in_flight,
            infer_here=self.backend.infer_here,
        )
        self._mesh_batcher.start()
        try:
            vertices, logits = await self.backend.infer(np.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), np.uint8))
            if np.shape(vertices) != (1, NUM_VERTICES, 3) or np.size(logits) != 1:
                raise ValueError(f"mesh model outputs {np.shape(vertices)} and {np.shape(logits)}")
        except (ServiceError, ValueError, OSError) as exc:
            message = exc.message if isinstance(exc, ServiceError) else str(exc)
            self._reason = f"the mesh model {self.backend.model_name!r} failed its warm-up: {message}"
            log.warning("dense mesh off: %s", self._reason)
            return
        self._ready = True
        log.info("dense mesh on: %s through %s", self.backend.model_name, self.backend.name)

    async def stop(self) -> None:
        self._ready = False
        if self._mesh_batcher is not None:
            await self._mesh_batcher.stop()
        if self.backend is not None:
            await self.backend.close()

    def check(self, options: DetectOptions) -> None:
        """422 ``mesh_unavailable`` for the options that need the mesh (``return_mesh``, ``landmarks=mesh``,
        ``return_pose``) when this server has no working mesh model, ``pose_unavailable`` for ``return_pose``
        without the canonical face."""
        needs = [
            name
            for name, asked in (
                ("return_mesh", options.return_mesh),
                ("landmarks=mesh", options.landmarks == "mesh"),
                ("return_pose", options.return_pose),
            )
            if asked
        ]
        if needs and not self.ready:
            raise validation_error(
                f"{', '.join(needs)} is not available: {self.unavailable_reason}", code="mesh_unavailable"
            )
        if options.return_pose and self.canonical is None:
            raise validation_error(f"return_pose is not available: {self._pose_reason}", code="pose_unavailable")

    def runs_for(self, options: DetectOptions) -> bool:
        """Whether the request's faces go through the mesh: asked for directly, or for quality's frontalness
        and has_mesh when this server has the mesh."""
        return (
            options.return_mesh
            or options.landmarks == "mesh"
            or options.return_pose
            or (options.return_quality and self.ready)
        )

    def model_info(self) -> ModelInfo | None:
        if self.backend is None:
            return None
        return ModelInfo(
            name=self.backend.model_name,
            role="mesh",
            backend=self.backend.name,
            has_dense=True,
            canvas_size=INPUT_SIZE,
            max_batch_size=self.settings.mesh_max_batch_size,
            precision=self.backend.precision,
            ready=self._ready,
        )
