"""A model in this process: the detector (OpenVINO or ONNX Runtime, :func:`facelocal.runtime.load_exported`) or
FaceMesh (:class:`facelocal.facemesh.OnnxFaceMesh`), each behind the same class.

The runtime releases the GIL and runs in a thread of its own, so the event loop keeps serving while a batch is
computed. One thread and one batch at a time (``batches_in_flight = 1``): the runtime already spreads a batch
over every core (``intra_op_threads``; the mesh over its workers). ``infer_here`` runs it on the caller's thread
instead, for the core's lone request on an idle server, where the event loop has nothing else to do.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from facelocal.contract import DENSE_KEY, MODEL_KEY, PRESET_KEY
from facelocal.facemesh import OnnxFaceMesh
from facelocal.runtime import load_exported, model_metadata
from service.backends.base import require_model_file
from service.errors import unavailable
from service.settings import Settings

log = logging.getLogger(__name__)

RUNTIME_NAMES = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}
# The mesh model's name when its file does not say.
MESH_MODEL_NAME = "facemesh"


class InProcessBackend:
    """``run`` (stacked inputs to the model's output arrays) in a dedicated thread, as an inference backend.

    Attributes as :class:`~service.backends.base.InferenceBackend`; also ``precision_ms``, what ``auto`` measured
    to choose the precision (empty when there was no choice).
    """

    batches_in_flight = 1

    def __init__(
        self,
        run: Callable[[np.ndarray], Sequence[np.ndarray]],
        runtime: str,
        model_name: str,
        *,
        has_dense: bool = False,
        fixed_canvas: int | None = None,
        precision: str | None = None,
        precision_ms: dict[str, float] | None = None,
        release: Callable[[], None] | None = None,
    ) -> None:
        self._run = run
        self.name = runtime
        self.model_name = model_name
        self.has_dense = has_dense
        self.fixed_canvas = fixed_canvas
        self.precision = precision
        self.precision_ms = precision_ms or {}
        self._release = release
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=runtime)

    @classmethod
    def detector(cls, settings: Settings) -> InProcessBackend:
        """The exported detector (``facelocal export onnx`` or ``int8``) at ``settings.precision``; a precision
        the file cannot run at stops the start with ``ValueError``."""
        require_model_file(settings.model_path)
        if settings.int8_model_path is not None:
            require_model_file(settings.int8_model_path, export="facelocal export int8")
        # A compile for a new canvas shape must not hold up the request that asks for it (or those behind it).
        model = load_exported(
            settings.model_path,
            settings.backend,
            settings.intra_op_threads,
            settings.precision,
            compile_in_background=True,
            int8_path=settings.int8_model_path,
        )
        # "auto" is decided here, by measurement where there is a choice: say what it became and why.
        measured = ", ".join(f"{name} {ms:.2f} ms" for name, ms in model.precision_ms.items())
        log.info(
            "%s runs %s at %s (asked: %s%s)",
            settings.backend,
            settings.model_path,
            model.precision,
            settings.precision,
            f"; a forward at start-up: {measured}" if measured else "",
        )
        return cls(
            model.forward,
            settings.backend,
            settings.model_name or model.metadata.get(PRESET_KEY, settings.model_path.stem),
            has_dense=model.metadata.get(DENSE_KEY, "false") == "true",
            fixed_canvas=model.fixed_canvas,
            precision=model.precision,
            precision_ms=model.precision_ms,
        )

    @classmethod
    def mesh(cls, settings: Settings, path: Path) -> InProcessBackend:
        """The FaceMesh export at ``path`` on the detector's runtime: a batch's crops one at a time (on CPU a
        single crop keeps its activations in cache: in ONNX Runtime faster per face than a batched run, in
        OpenVINO as fast, and one input shape is one compiled model), split over ``mesh_threads`` single-threaded
        workers (0: every core)."""
        workers = settings.mesh_threads or len(os.sched_getaffinity(0))
        mesh = OnnxFaceMesh(path, threads=1, rows_at_once=1, workers=workers, runtime=settings.backend)
        name = model_metadata(path).get(MODEL_KEY, MESH_MODEL_NAME)
        # FaceMesh runs in fp32 on either runtime (facelocal.facemesh.OnnxFaceMesh).
        return cls(mesh, settings.backend, name, has_dense=True, precision="fp32", release=mesh.close)

    async def infer(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        """Stacked inputs (the detector's ``(B, 3, H, W)`` uint8 canvases, the mesh's ``(N, 192, 192, 3)`` uint8
        crops) to the model's outputs, each ``(B, ...)``, in the backend's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.infer_here, batch)

    def infer_here(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        """:meth:`infer` on the calling thread."""
        try:
            return tuple(self._run(batch))
        except RuntimeError as exc:  # ONNX Runtime's and OpenVINO's inference failures are RuntimeErrors
            raise unavailable(f"{RUNTIME_NAMES.get(self.name, self.name)} failed on {self.model_name}: {exc}") from exc

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._release is not None:
            self._release()
