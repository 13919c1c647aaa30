"""ONNX Runtime in process: the default backend, needing no other server."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from facelocal.contract import DENSE_KEY, OUTPUT_NAMES, PRECISION_KEY, PRESET_KEY
from facelocal.runtime import onnxruntime_session, resolve_precision
from service.backends.base import require_model_file
from service.errors import unavailable
from service.settings import Settings


class OnnxRuntimeBackend:
    """Runs the exported model (``facelocal export onnx``) with ONNX Runtime on CPU.

    ``session.run`` releases the GIL and runs in a dedicated thread, so the event loop keeps serving
    while a batch is computed. One thread is enough: the micro-batcher sends one batch at a time and
    ONNX Runtime parallelises inside it (``intra_op_threads``).
    """

    name = "onnxruntime"
    batches_in_flight = 1

    def __init__(self, settings: Settings) -> None:
        require_model_file(settings.model_path)
        self._session = onnxruntime_session(settings.model_path, settings.intra_op_threads)
        metadata = self._session.get_modelmeta().custom_metadata_map
        # ONNX Runtime runs a file as it is stored; this only refuses a precision it cannot honour.
        self.precision = resolve_precision(self.name, settings.precision, metadata.get(PRECISION_KEY, "fp32"))
        self.model_name = settings.model_name or metadata.get(PRESET_KEY, settings.model_path.stem)
        self.has_dense = metadata.get(DENSE_KEY, "false") == "true"
        height, width = self._session.get_inputs()[0].shape[2:]
        self.fixed_canvas = height if isinstance(height, int) and height == width else None
        self._input_name = self._session.get_inputs()[0].name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnxruntime")

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        boxes, scores, landmarks = self._session.run(list(OUTPUT_NAMES), {self._input_name: batch})
        return boxes, scores, landmarks

    async def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(B, 3, H, W)`` uint8 canvases to boxes ``(B, K, 4)``, scores ``(B, K)``, landmarks ``(B, K, 10)``."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, batch)
        except RuntimeError as exc:  # also covers onnxruntime's Fail / RuntimeException
            raise unavailable(f"ONNX Runtime failed: {exc}") from exc

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        self._executor.shutdown(wait=True)
