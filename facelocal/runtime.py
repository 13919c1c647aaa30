"""Forward functions: the decoded network as numpy in, numpy out, on ONNX Runtime or torch.

A forward maps a ``(B, 3, H, W)`` uint8 BGR canvas batch (:mod:`facelocal.contract`) to ``boxes (B, K, 4)``,
``scores (B, K)`` and ``landmarks (B, K, 10)`` in canvas pixels. The ONNX Runtime half imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def onnxruntime_session(model_path: str | Path, threads: int = 0):
    """A CPU session with full graph optimisation (30 -> 20 ms at VGA) and ``threads`` intra-op threads
    (0: the runtime's choice)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def onnxruntime_forward(model_path: str | Path, threads: int = 0) -> Forward:
    """The exported model (``facelocal export onnx``) on ONNX Runtime."""
    session = onnxruntime_session(model_path, threads)
    input_name = session.get_inputs()[0].name

    def forward(batch: np.ndarray):
        return tuple(session.run(None, {input_name: batch}))

    return forward


def torch_forward(network, threads: int | None = None) -> Forward:
    """Torch eager on ``network`` (a ``DecodedRetinaFace``), with ``threads`` intra-op threads if given."""
    import torch

    network.eval()

    def forward(batch: np.ndarray):
        if threads is not None:
            torch.set_num_threads(threads)
        with torch.inference_mode():
            return tuple(t.numpy() for t in network(torch.from_numpy(batch)))

    return forward
