"""FaceMesh on Triton: the detector backend's connection handling, with the mesh model's tensors."""

from __future__ import annotations

import numpy as np

from facelocal.facemesh import ONNX_INPUT, ONNX_OUTPUTS
from service.backends.triton_client import TritonClient, infer_in_chunks
from service.backends.triton_config import mesh_model_batch
from service.errors import unavailable
from service.settings import Settings


class TritonMeshBackend:
    """FaceMesh served by Triton (``model_repository/facemesh``): uint8 crops over the wire (110 kB each; no
    shared memory), with the detector backend's timeouts, single retry on a fresh connection and 503s."""

    name = "triton"
    precision: str | None = None
    infer_here = None  # a remote server: every inference is a request

    def __init__(self, settings: Settings) -> None:
        self._client = TritonClient(settings, settings.triton_mesh_model, setup=self._setup)
        # As the detector's: one batch computed while the next travels.
        self.batches_in_flight = 2
        self.model_name = settings.triton_mesh_model
        self._model_batch = settings.max_batch_size

    async def _setup(self) -> None:
        try:
            self._model_batch = mesh_model_batch(await self._client.model_config())
        except ValueError as exc:
            raise unavailable(str(exc), code="model_mismatch") from None

    async def infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 192, 192, 3)`` uint8 crops to vertices ``(N, 468, 3)`` and presence logits ``(N, 1)``."""
        vertices, presence = await self._client.run(
            lambda: infer_in_chunks(crops, self._model_batch, self._infer_chunk)
        )
        return vertices, presence

    async def _infer_chunk(self, crops: np.ndarray) -> tuple[np.ndarray, ...]:
        return await self._client.infer_wire(ONNX_INPUT, crops, ONNX_OUTPUTS)

    async def ready(self) -> bool:
        """True only when Triton answers and reports the model ready."""
        return await self._client.ready()

    async def close(self) -> None:
        await self._client.close()
