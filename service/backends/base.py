"""The protocol every inference backend implements (OpenVINO or ONNX Runtime in process, Triton)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class InferenceBackend(Protocol):
    """Runs the decoded RetinaFace graph on a batch.

    Attributes:
        name: backend name, ``onnxruntime``, ``openvino`` or ``triton``.
        model_name: the model's name, e.g. ``mobilenet0.25``.
        has_dense: whether the model has the dense mesh branch.
        fixed_canvas: the square canvas side the model requires, or ``None`` if any size works.
        precision: the arithmetic the model runs at (fp32, bf16 or int8), or None where the server decides
            (Triton).
        batches_in_flight: how many batches the micro-batcher may run at once (``Settings.max_batches_in_flight``
            overrides it): 1 for a runtime in this process, which spreads one batch over every core.
        infer_here: :meth:`infer` on the calling thread, which it blocks for the whole inference, for a backend in
            this process; None for a remote one. The core runs an idle server's lone request through it on the
            event loop, which would only wait meanwhile: two thread hand-offs fewer.
    """

    name: str
    model_name: str
    has_dense: bool
    fixed_canvas: int | None
    precision: str | None
    batches_in_flight: int

    @property
    def infer_here(self) -> Callable[[np.ndarray], tuple[np.ndarray, ...]] | None: ...

    async def infer(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(B, 3, H, W)`` uint8 BGR canvases (:mod:`facelocal.contract`) to the three outputs ``boxes (B, K, 4)``,
        ``scores (B, K)`` and ``landmarks (B, K, 10)`` in canvas pixels.

        Must not block the event loop. Raises ``ServiceError`` 503 ``backend_unavailable`` when the
        backend cannot answer.
        """
        ...

    async def ready(self) -> bool:
        """Whether the backend can serve now."""
        ...

    async def close(self) -> None:
        """Release sessions, connections and threads."""
        ...


def require_model_file(path: Path, export: str = "facelocal export onnx") -> None:
    """``FileNotFoundError`` naming the ``export`` command that makes it when an in-process backend's model file is
    missing."""
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found; export it with '{export} --out {path}'")
