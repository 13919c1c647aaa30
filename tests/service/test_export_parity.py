"""The exported ONNX model in ONNX Runtime matches torch, and the serving package stays torch-free."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from facelocal.config import DEFAULT_PRESET, get_config
from facelocal.contract import BGR_MEAN, DENSE_KEY, INPUT_NAME, OUTPUT_NAMES, PRESET_KEY
from facelocal.imageio import load_image
from facelocal.models import load_pretrained
from facelocal.models.decoded import DecodedRetinaFace
from facelocal.preprocess import ResizePolicy, to_canvas
from tests.paths import shared_file


def _batch(canvas_h: int, canvas_w: int) -> np.ndarray:
    """Both shared photos letterboxed onto one ``(2, 3, canvas_h, canvas_w)`` batch."""
    tensors = []
    for name in ("selfie_group.jpg", "wider_train_band_crowd.jpg"):
        rgb = load_image(shared_file("images", name))
        placement = ResizePolicy("letterbox", min(canvas_h, canvas_w)).plan(rgb.shape[1], rgb.shape[0])
        padded = np.empty((3, canvas_h, canvas_w), np.uint8)
        padded[:] = np.array(BGR_MEAN, np.uint8)[:, None, None]
        canvas = to_canvas(rgb, placement)
        padded[:, : canvas.shape[1], : canvas.shape[2]] = canvas
        tensors.append(padded)
    return np.stack(tensors)


@pytest.mark.parametrize("canvas", [(640, 640), (480, 800)])
def test_onnxruntime_matches_torch(onnx_model_path, weights_path, canvas) -> None:
    images = _batch(*canvas)
    model = DecodedRetinaFace(load_pretrained(get_config(DEFAULT_PRESET), weights_path)).eval()
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(images))]
    session = ort.InferenceSession(str(onnx_model_path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(uint8)"
    boxes, scores, landmarks = session.run(list(OUTPUT_NAMES), {INPUT_NAME: images})
    assert boxes.shape == expected[0].shape and scores.shape == expected[1].shape
    np.testing.assert_allclose(scores, expected[1], atol=1e-4, rtol=0)
    # Coordinates compared normalised by the canvas, as the pipeline reports them relative to the image.
    size = np.array(canvas[::-1], np.float32)  # (width, height)
    np.testing.assert_allclose(boxes / np.tile(size, 2), expected[0] / np.tile(size, 2), atol=1e-4, rtol=0)
    np.testing.assert_allclose(landmarks / np.tile(size, 5), expected[2] / np.tile(size, 5), atol=1e-4, rtol=0)
    # The comparison covers real faces, not only background anchors.
    assert (scores > 0.5).sum() > 20


def test_onnx_metadata_names_the_model(onnx_model_path) -> None:
    metadata = ort.InferenceSession(str(onnx_model_path)).get_modelmeta().custom_metadata_map
    assert metadata[PRESET_KEY] == DEFAULT_PRESET
    assert metadata[DENSE_KEY] == "false"


def test_serving_package_never_imports_torch() -> None:
    code = (
        "import sys, service.main, service.core, service.mesh, service.backends.inprocess, "
        "service.backends.triton_mesh, service.rest, service.cli, facelocal.facemesh; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
