"""FaceMesh on Triton: the detector backend's connection handling, with the mesh model's tensors."""

from __future__ import annotations

import numpy as np

from facelocal.facemesh import ONNX_INPUT, ONNX_OUTPUTS
from service.backends.triton import TritonBackend
from service.backends.triton_config import mesh_model_batch
from service.errors import unavailable
from service.settings import Settings


class TritonMeshBackend(TritonBackend):
    """FaceMesh served by Triton (``model_repository/facemesh``): uint8 crops over the wire (110 kB each; no
    shared memory), with the detector backend's timeouts, single retry on a fresh connection and 503s."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._model = settings.triton_mesh_model
        self.model_name = settings.triton_mesh_model
        self._shm_mode = "off"
        self.fixed_canvas = None

    async def _setup(self) -> None:
        async with self._setup_lock:
            if not self._needs_setup:
                return
            config = await self._model_config()
            try:
                self._model_batch = mesh_model_batch(config)
            except ValueError as exc:
                raise unavailable(str(exc), code="model_mismatch") from None
            self._needs_setup = False

    async def _infer_chunk(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(batch) == 0:
            raise ValueError("empty batch")
        types = self._types
        tensor = types.InferInput(ONNX_INPUT, list(batch.shape), "UINT8")
        tensor.set_data_from_numpy(np.ascontiguousarray(batch, np.uint8))
        outputs = [types.InferRequestedOutput(name) for name in ONNX_OUTPUTS]
        result = await self._call(self._client.infer(self._model, [tensor], outputs=outputs))
        return tuple(result.as_numpy(name) for name in ONNX_OUTPUTS)
