"""The OpenVINO backend: the service's default (precision ``auto``), serving what the library finds with OpenVINO."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from facelocal.detector import Detector
from facelocal.imageio import load_image
from facelocal.preprocess import ResizePolicy
from service.backends import create_backend
from service.settings import Settings
from tests.paths import shared_file
from tests.service.helpers import client, photo_bytes


def test_defaults_are_openvino_at_the_fastest_precision_that_holds_the_gate(monkeypatch) -> None:
    for name in ("FACELOCAL_BACKEND", "FACELOCAL_PRECISION"):
        monkeypatch.delenv(name, raising=False)
    assert (Settings().backend, Settings().precision) == ("openvino", "auto")


def test_service_on_openvino_serves_the_library_faces(start_service, onnx_model_path) -> None:
    running = start_service(backend="openvino", precision="fp32")
    with client(running.http_url) as http:
        assert http.get("/v1/models").json()["models"][0]["backend"] == "openvino"
        response = http.post("/v1/detect", content=photo_bytes(), headers={"content-type": "image/jpeg"})
    assert response.status_code == 200, response.text
    faces = response.json()["faces"]
    service_policy = ResizePolicy("fit", 640)
    library = Detector.from_onnx(onnx_model_path, runtime="openvino", precision="fp32", resize=service_policy)
    expected = library.detect([load_image(shared_file("images", "selfie_group.jpg"))])[0]
    assert len(faces) == len(expected.scores) > 20
    np.testing.assert_allclose([f["box"] for f in faces], expected.boxes, atol=0.05)
    np.testing.assert_allclose([f["score"] for f in faces], expected.scores, atol=1e-3)


def test_auto_runs_an_fp32_file_at_the_precision_it_timed_fastest(onnx_model_path, caplog) -> None:
    """Both candidates hold the accuracy gate (tests/eval/test_precision_ap.py), so auto is a speed choice: made
    by a forward of each at start-up, logged, and shown in GET /v1/models."""
    with caplog.at_level("INFO", logger="service.backends.inprocess"):
        backend = create_backend(Settings(backend="openvino", model_path=onnx_model_path))
    assert set(backend.precision_ms) == {"fp32", "bf16"} and all(ms > 0 for ms in backend.precision_ms.values())
    assert backend.precision == min(backend.precision_ms, key=backend.precision_ms.__getitem__)
    assert f"at {backend.precision} (asked: auto; a forward at start-up: fp32 " in caplog.text
    assert (backend.model_name, backend.has_dense, backend.fixed_canvas) == ("mobilenet0.25", False, None)


def test_auto_also_times_the_int8_export_when_given(onnx_model_path, quick_int8_model_path, caplog) -> None:
    settings = Settings(backend="openvino", model_path=onnx_model_path, int8_model_path=quick_int8_model_path)
    with caplog.at_level("INFO", logger="service.backends.inprocess"):
        backend = create_backend(settings)
    assert set(backend.precision_ms) == {"fp32", "bf16", "int8"}
    assert backend.precision == min(backend.precision_ms, key=backend.precision_ms.__getitem__)
    assert ", int8 " in caplog.text
    missing = Settings(backend="openvino", model_path=onnx_model_path, int8_model_path=onnx_model_path.parent / "no")
    with pytest.raises(FileNotFoundError, match="facelocal export int8"):
        create_backend(missing)
    assert Settings(int8_model_path="none").int8_model_path is None


def test_models_show_the_precision(start_service) -> None:
    running = start_service(backend="openvino", precision="fp32")
    with client(running.http_url) as http:
        (detector,) = http.get("/v1/models").json()["models"]
    assert (detector["backend"], detector["precision"]) == ("openvino", "fp32")


@pytest.mark.parametrize(
    ("backend", "precision", "message"),
    [
        ("openvino", "int8", "facelocal export int8"),
        ("onnxruntime", "int8", "facelocal export int8"),
        ("onnxruntime", "bf16", "openvino runtime only"),
    ],
)
def test_a_precision_the_file_cannot_run_stops_the_start(onnx_model_path, backend, precision, message) -> None:
    with pytest.raises(ValueError, match=message):
        create_backend(Settings(backend=backend, precision=precision, model_path=onnx_model_path))


def test_openvino_backend_imports_no_torch() -> None:
    code = "import sys, service.backends.inprocess; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
