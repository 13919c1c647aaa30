"""OpenVINO in process: the exported model on Intel's CPU runtime, in bf16 or int8 where that is faster."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from facelocal.contract import DENSE_KEY, PRECISION_KEY, PRESET_KEY
from facelocal.runtime import OpenVinoForward, model_metadata, resolve_precision
from service.backends.base import require_model_file
from service.errors import unavailable
from service.settings import Settings

log = logging.getLogger(__name__)


class OpenVinoBackend:
    """Runs an exported model (``facelocal export onnx`` or ``facelocal export int8``) with OpenVINO on CPU.

    ``Settings.precision`` picks the arithmetic (:func:`facelocal.runtime.resolve_precision`); a precision the
    file cannot run at stops the start with ``ValueError``. Inference runs in one dedicated thread, as in the
    ONNX Runtime backend: the batcher sends one batch at a time and OpenVINO parallelises inside it.
    """

    name = "openvino"
    batches_in_flight = 1

    def __init__(self, settings: Settings) -> None:
        require_model_file(settings.model_path)
        metadata = model_metadata(settings.model_path)
        self.precision = resolve_precision(self.name, settings.precision, metadata.get(PRECISION_KEY, "fp32"))
        self._forward = OpenVinoForward(settings.model_path, settings.intra_op_threads, self.precision)
        self.model_name = settings.model_name or metadata.get(PRESET_KEY, settings.model_path.stem)
        self.has_dense = metadata.get(DENSE_KEY, "false") == "true"
        height, width = self._forward.input_shape[2:]
        self.fixed_canvas = height.get_length() if height.is_static and height == width else None
        # "auto" resolves by the CPU, so say what it became.
        log.info("OpenVINO runs %s at %s (asked: %s)", settings.model_path, self.precision, settings.precision)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openvino")

    async def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(B, 3, H, W)`` uint8 canvases to boxes ``(B, K, 4)``, scores ``(B, K)``, landmarks ``(B, K, 10)``."""
        try:
            boxes, scores, landmarks = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._forward, batch
            )
        except RuntimeError as exc:  # OpenVINO raises RuntimeError (or a subclass) for inference failures
            raise unavailable(f"OpenVINO failed: {exc}") from exc
        return boxes, scores, landmarks

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        self._executor.shutdown(wait=True)
