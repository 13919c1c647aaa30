"""The RetinaFace detector served by NVIDIA Triton: the connection (:mod:`service.backends.triton_client`: timeouts,
one retry on a fresh connection, 503s) and, for a Triton on this host, the shared-memory region the tensors go
through (:mod:`service.backends.triton_shm`)."""

from __future__ import annotations

import numpy as np

from facelocal.contract import INPUT_DTYPE, INPUT_NAME, OUTPUT_NAMES
from service.backends.triton_client import TritonClient, infer_in_chunks
from service.backends.triton_config import compact_model_shape
from service.backends.triton_shm import SharedMemory
from service.errors import unavailable
from service.settings import Settings


class TritonBackend:
    """The decoded RetinaFace served by Triton (``model_repository/retinaface`` or ``retinaface_trt``).

    ``fixed_canvas`` is ``settings.canvas_size``; a model whose canvas differs is refused when Triton's model
    config is read (first call). Batches larger than the model's ``max_batch_size`` are sent in chunks.
    """

    name = "triton"
    # While Triton computes one batch, the next is on its way in and the last one's outputs on their way back.
    BATCHES_IN_FLIGHT = 2
    # Triton's model configuration decides it, not this process.
    precision: str | None = None
    infer_here = None  # a remote server: every inference is a request

    def __init__(self, settings: Settings) -> None:
        self._client = TritonClient(settings, settings.triton_model, setup=self._setup)
        self.batches_in_flight = settings.max_batches_in_flight or self.BATCHES_IN_FLIGHT
        self._shared = SharedMemory(self._client, settings.triton_shared_memory, slots=self.batches_in_flight)
        self._explicit_name = settings.model_name
        self._max_batch_size = settings.max_batch_size
        self.model_name = settings.model_name or settings.triton_model
        self.has_dense = False
        self.fixed_canvas: int | None = settings.canvas_size
        self._top_k = 0
        self._model_batch = settings.max_batch_size

    @property
    def uses_shared_memory(self) -> bool:
        return self._shared.region is not None

    async def _setup(self) -> None:
        """Read and check the model config, then (re)register shared memory if it is to be used."""
        shape = compact_model_shape(await self._client.model_config())
        if shape.canvas != self.fixed_canvas:
            raise unavailable(
                f"Triton model {self._client.model!r} takes a {shape.canvas}px canvas, the service sends "
                f"{self.fixed_canvas}px (set FACELOCAL_CANVAS_SIZE={shape.canvas})",
                code="model_mismatch",
            )
        self._top_k = shape.top_k
        self._model_batch = shape.max_batch_size or 1
        self.model_name = self._explicit_name or shape.preset
        self.has_dense = shape.dense
        # The uint8 canvases plus the three float32 top-k outputs of the largest chunk.
        per_image = 3 * shape.canvas**2 + 4 * self._top_k * (4 + 1 + 10)
        await self._shared.setup(per_image * min(self._max_batch_size, self._model_batch))

    async def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(B, 3, S, S)`` uint8 canvases to boxes ``(B, K, 4)``, scores ``(B, K)``, landmarks ``(B, K, 10)``."""
        boxes, scores, landmarks = await self._client.run(
            lambda: infer_in_chunks(batch, self._model_batch, self._infer_chunk)
        )
        return boxes, scores, landmarks

    async def _infer_chunk(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        batch = np.ascontiguousarray(batch, dtype=INPUT_DTYPE)
        count, top_k = len(batch), self._top_k
        shapes = [(count, top_k, 4), (count, top_k), (count, top_k, 10)]
        outputs = await self._shared.infer(INPUT_NAME, batch, list(zip(OUTPUT_NAMES, shapes, strict=True)))
        return outputs if outputs is not None else await self._client.infer_wire(INPUT_NAME, batch, OUTPUT_NAMES)

    async def ready(self) -> bool:
        """True only when Triton answers and reports the model ready."""
        return await self._client.ready()

    async def close(self) -> None:
        await self._shared.close()
        await self._client.close()
