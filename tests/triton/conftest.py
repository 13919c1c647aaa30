"""Fixtures for the Triton tests: the compact ONNX export and a real tritonserver on loopback.

The server comes from the nvidia-pytriton wheel (see harness.py). Startup is bounded (60 s) and a
failure shows the server's log; a missing wheel fails the tests with the install command.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.backends.triton_config import compact_model_shape, read_model_config
from tests.triton.harness import CPU_MODEL_CONFIG, TritonServer, TritonUnavailableError, start_local_triton


@pytest.fixture(scope="session")
def compact_shape():
    return compact_model_shape(read_model_config(CPU_MODEL_CONFIG))


@pytest.fixture(scope="session")
def compact_onnx_path(tmp_path_factory: pytest.TempPathFactory, weights_path: Path, compact_shape) -> Path:
    """The checkpoint exported as model_repository/retinaface expects it: fixed canvas, top-k outputs."""
    from facelocal.config import get_config
    from facelocal.export import export_onnx
    from facelocal.models import load_pretrained

    model = load_pretrained(get_config(compact_shape.preset), weights_path)
    canvas = (compact_shape.canvas, compact_shape.canvas)
    return export_onnx(
        model, tmp_path_factory.mktemp("compact") / "model.onnx", dynamic=False, canvas=canvas, top_k=compact_shape.top_k
    )


def _start(workdir: Path, onnx_path: Path) -> TritonServer:
    try:
        server, _ = start_local_triton(workdir, onnx_path)
    except TritonUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    return server


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory, compact_onnx_path: Path) -> Iterator[TritonServer]:
    """A Triton shared by the tests that do not stop it."""
    server = _start(tmp_path_factory.mktemp("triton"), compact_onnx_path)
    yield server
    server.stop()


@pytest.fixture
def disposable_triton(tmp_path: Path, compact_onnx_path: Path) -> Iterator[TritonServer]:
    """A Triton of the test's own, free to be killed and restarted."""
    server = _start(tmp_path, compact_onnx_path)
    yield server
    server.kill()
