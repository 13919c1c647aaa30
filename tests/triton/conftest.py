"""Fixtures for the Triton tests: the exports model_repository/ serves and a real tritonserver on loopback.

The server comes from the nvidia-pytriton wheel (see tests/local/tritonserver.py). Startup is bounded (60 s)
and a failure shows the server's log; a missing wheel fails the tests with the install command.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from service.backends.triton_config import compact_model_shape, read_model_config
from tests.local.tritonserver import (
    CPU_MODEL_CONFIG,
    ROOT,
    TritonServer,
    TritonUnavailableError,
    start_local_triton,
)
from tests.paths import shared_file


@pytest.fixture(scope="session")
def compact_shape():
    return compact_model_shape(read_model_config(CPU_MODEL_CONFIG))


def prepare_model_repository(out: Path, *flags: str) -> Path:
    """``out`` exported by the script that fills model_repository/<model>/1, with ``flags``."""
    command = [sys.executable, str(ROOT / "scripts" / "prepare_model_repository.py"), *flags, "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def compact_onnx_path(tmp_path_factory: pytest.TempPathFactory, weights_path: Path) -> Path:
    """The detector as model_repository/retinaface serves it (about 5 s)."""
    out = tmp_path_factory.mktemp("compact") / "model.onnx"
    return prepare_model_repository(out, "--weights", str(weights_path))


@pytest.fixture(scope="session")
def mesh_repository_onnx(tmp_path_factory: pytest.TempPathFactory, mesh_weights_path: Path) -> Path:
    """FaceMesh as model_repository/facemesh serves it (about 2 s)."""
    out = tmp_path_factory.mktemp("facemesh") / "model.onnx"
    return prepare_model_repository(out, "--model", "facemesh", "--mesh-weights", str(mesh_weights_path))


@pytest.fixture(scope="session")
def photo_canvases(compact_shape) -> np.ndarray:
    """Both shared photos letterboxed as the service does: ``(2, 3, canvas, canvas)`` uint8."""
    from facelocal.imageio import load_image
    from facelocal.preprocess import ResizePolicy, to_canvas

    canvas = compact_shape.canvas
    tensors = []
    for name in ("selfie_group.jpg", "wider_train_band_crowd.jpg"):
        rgb = load_image(shared_file("images", name))
        tensors.append(to_canvas(rgb, ResizePolicy("letterbox", canvas).plan(rgb.shape[1], rgb.shape[0])))
    return np.stack(tensors)


def _start(workdir: Path, onnx_path: Path, mesh_onnx_path: Path | None = None) -> TritonServer:
    try:
        server, _ = start_local_triton(workdir, onnx_path, mesh_onnx_path)
    except TritonUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    return server


@pytest.fixture(scope="session")
def triton(
    tmp_path_factory: pytest.TempPathFactory, compact_onnx_path: Path, mesh_repository_onnx: Path
) -> Iterator[TritonServer]:
    """A Triton shared by the tests that do not stop it: the detector and the FaceMesh model."""
    server = _start(tmp_path_factory.mktemp("triton"), compact_onnx_path, mesh_repository_onnx)
    yield server
    server.stop()


@pytest.fixture
def disposable_triton(tmp_path: Path, compact_onnx_path: Path) -> Iterator[TritonServer]:
    """A Triton of the test's own, free to be killed and restarted."""
    server = _start(tmp_path, compact_onnx_path)
    yield server
    server.kill()
