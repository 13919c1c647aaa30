"""Shared fixtures: the real weights exported to ONNX once per session, and real servers on loopback.

``start_service(**settings)`` starts REST + gRPC through :func:`service.main.serve` (the code
``facelocal serve`` runs) on free 127.0.0.1 ports in a background thread, waits until ``/readyz``
answers 200 and returns a :class:`RunningService`. ``service`` is a default one shared by the session.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.local.ports import free_port
from tests.paths import shared_file

READY_TIMEOUT_S = 60.0

# Services built in tests get a mesh model only when a test passes one: a developer's artifacts/facemesh.onnx
# (the Settings default, exported by `make model`) must not change what the other tests see. Explicit
# settings win over these variables.
os.environ["FACELOCAL_MESH_MODEL_PATH"] = "none"
os.environ["FACELOCAL_TRITON_MESH_MODEL"] = ""


@pytest.fixture(scope="session", autouse=True)
def onnxruntime_service_backend() -> Iterator[None]:
    """Services in the suite run ONNX Runtime unless a test names a backend: they are checked against the library's
    ONNX Runtime forward to a few thousandths. The default backend (OpenVINO, bf16 where the CPU computes it) has
    its own tests in tests/service/test_openvino_backend.py."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACELOCAL_BACKEND", "onnxruntime")
        yield


@pytest.fixture(scope="session")
def weights_path() -> Path:
    return shared_file("weights", "mobilenet0.25_Final.pth")


@pytest.fixture(scope="session")
def onnx_model_path(tmp_path_factory: pytest.TempPathFactory, weights_path: Path) -> Path:
    """The shipped checkpoint exported with DEFAULT_PRESET, dynamic batch/height/width (about 1 s)."""
    from facelocal.config import DEFAULT_PRESET, get_config
    from facelocal.export import export_onnx
    from facelocal.models import load_pretrained

    model = load_pretrained(get_config(DEFAULT_PRESET), weights_path)
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "model.onnx")


@pytest.fixture(scope="session")
def quick_int8_model_path(tmp_path_factory: pytest.TempPathFactory, onnx_model_path: Path) -> Path:
    """``onnx_model_path`` quantised as ``facelocal export int8`` does, but calibrated on the six shared photos
    only, for speed (a few seconds; the shipped calibration is in the slow tests)."""
    from facelocal.quantize import calibration_images, quantize_int8

    images = calibration_images([shared_file("images", "selfie_group.jpg").parent])
    return quantize_int8(onnx_model_path, tmp_path_factory.mktemp("int8") / "quick.onnx", images)


@pytest.fixture(scope="session")
def mesh_weights_path() -> Path:
    """MediaPipe's FaceMesh v1 model (face_landmark.tflite) from shared/data."""
    return shared_file("weights", "facemesh", "face_landmark.tflite")


@pytest.fixture(scope="session")
def mesh_onnx_path(tmp_path_factory: pytest.TempPathFactory, mesh_weights_path: Path) -> Path:
    """FaceMesh exported to ONNX from the .tflite, as `facelocal export onnx --mesh` does (about 1 s)."""
    from facelocal.export import export_mesh_onnx
    from facelocal.models.facemesh import load_facemesh

    return export_mesh_onnx(load_facemesh(mesh_weights_path), tmp_path_factory.mktemp("mesh") / "facemesh.onnx")


@dataclass
class RunningService:
    """A service started by :func:`start_service`: its settings, where to reach it and the backend it was given."""

    settings: object
    http_url: str
    grpc_target: str
    _thread: threading.Thread
    _loop: asyncio.AbstractEventLoop
    _stop: asyncio.Event
    backend: object = None

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful shutdown (as on SIGTERM), waiting for it to finish."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)


def launch_service(settings, wait_ready: bool = True, backend=None) -> RunningService:
    """Run :func:`service.main.serve` (over ``backend`` if given) in a thread with its own event loop; optionally
    wait for /readyz."""
    from service.main import serve

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    errors: list[BaseException] = []

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve(settings, stop, backend))
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=main, name=f"service-{settings.http_port}", daemon=True)
    thread.start()
    running = RunningService(
        settings,
        f"http://127.0.0.1:{settings.http_port}",
        f"127.0.0.1:{settings.grpc_port}",
        thread,
        loop,
        stop,
        backend,
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    path = "/readyz" if wait_ready else "/healthz"
    while time.monotonic() < deadline:
        if errors or not thread.is_alive():
            raise RuntimeError(f"service failed to start: {errors[0] if errors else 'thread exited'}")
        try:
            with urllib.request.urlopen(running.http_url + path, timeout=2) as response:
                if response.status == 200:
                    return running
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    running.stop()
    raise RuntimeError(f"service not ready within {READY_TIMEOUT_S} s")


@pytest.fixture(scope="session")
def start_service(onnx_model_path: Path) -> Iterator[Callable[..., RunningService]]:
    """Factory: ``start_service(max_batch_size=4, api_key="k", ...)`` -> a ready :class:`RunningService`
    on fresh loopback ports, over the session's ONNX export unless ``model_path`` is given. ``wrap_backend``
    (e.g. ``GatedBackend``) wraps the backend the settings name; the service gets the wrapper, and so does
    ``running.backend``. Stopped at the end of the session (or earlier with ``.stop()``)."""
    from service.backends import create_backend
    from service.settings import Settings

    started: list[RunningService] = []

    def start(*, wait_ready: bool = True, wrap_backend: Callable | None = None, **overrides) -> RunningService:
        # No mesh model unless a test asks for one (a developer's artifacts/facemesh.onnx must not change results).
        values = {
            "host": "127.0.0.1",
            "model_path": onnx_model_path,
            "intra_op_threads": 2,
            "mesh_model_path": None,
            "triton_mesh_model": "",
        } | overrides
        values.setdefault("http_port", free_port())
        values.setdefault("grpc_port", free_port())
        settings = Settings(**values)
        backend = wrap_backend(create_backend(settings)) if wrap_backend is not None else None
        running = launch_service(settings, wait_ready=wait_ready, backend=backend)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture(scope="session")
def service(start_service) -> RunningService:
    """The default service (batch 8, 5 ms delay, no API key), shared by the session."""
    return start_service()
