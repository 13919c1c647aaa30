"""Runtimes and precisions: which precision a file may run at, OpenVINO against ONNX Runtime, and the int8 file.

Parity (same faces as fp32 on the six shared photos) is stated per precision in ``TOLERANCES``; the
val-sample AP gate of each shipped precision is in ``tests/eval/test_precision_ap.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import pytest

from facelocal.detector import Detector
from facelocal.imageio import load_image
from facelocal.preprocess import to_canvas
from facelocal.quantize import KEEP_FP32, QuantizeConfig, calibration_images, quantize_int8
from facelocal.runtime import (
    PRECISION_KEY,
    OpenVinoForward,
    exported_forward,
    load_exported,
    model_metadata,
    openvino_native_bf16,
    precision_candidates,
    resolve_precision,
)
from tests.paths import shared_file

PHOTOS = (
    "masked_faces_grid.jpg",
    "selfie_group.jpg",
    "single_face_closeup.jpg",
    "single_face_small.jpg",
    "two_people_hd.jpg",
    "wider_train_band_crowd.jpg",
)


@dataclass(frozen=True)
class Tolerance:
    """How far a precision's faces (score >= 0.5) may be from fp32's on the same photo: each face of one found in
    the other with at least ``iou``, scores within ``score``, every landmark within ``landmark`` of the face's
    size (square root of its area). A face may go unmatched only if its score is below ``borderline``."""

    iou: float
    score: float
    landmark: float
    borderline: float


# Measured on the six photos (worst face): bf16 IoU 0.938, score 0.020, landmark 0.034; int8 IoU 0.848, score
# 0.131, landmark 0.119, one extra face at 0.51.
TOLERANCES = {
    "fp32": Tolerance(0.999, 1e-4, 1e-3, 0.5),
    "bf16": Tolerance(0.9, 0.05, 0.05, 0.55),
    "int8": Tolerance(0.8, 0.2, 0.15, 0.6),
}


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` x1y1x2y2 boxes: ``(N, M)``."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area = lambda boxes: np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def assert_same_faces(reference: Detector, candidate: Detector, tolerance: Tolerance) -> None:
    """``candidate`` finds ``reference``'s faces on every shared photo, within ``tolerance``."""
    for name in PHOTOS:
        rgb = load_image(shared_file("images", name))
        want, got = reference.detect([rgb])[0], candidate.detect([rgb])[0]
        overlap = _iou(want.boxes, got.boxes)
        matched_want, matched_got = overlap.max(1) >= tolerance.iou, overlap.max(0) >= tolerance.iou
        assert np.all(want.scores[~matched_want] < tolerance.borderline), f"{name}: fp32 faces lost"
        assert np.all(got.scores[~matched_got] < tolerance.borderline), f"{name}: faces fp32 does not find"
        pairs = np.flatnonzero(matched_want), overlap.argmax(1)[matched_want]
        assert len(pairs[0]) >= 1
        np.testing.assert_allclose(got.scores[pairs[1]], want.scores[pairs[0]], atol=tolerance.score, err_msg=name)
        size = np.sqrt(np.prod(want.boxes[pairs[0], 2:] - want.boxes[pairs[0], :2], axis=1))
        error = np.abs(got.landmarks[pairs[1]] - want.landmarks[pairs[0]]).reshape(len(size), -1).max(1) / size
        assert error.max() <= tolerance.landmark, f"{name}: landmarks {error.max():.3f} of the face size apart"


@pytest.fixture(scope="module")
def fp32_reference(onnx_model_path) -> Detector:
    return Detector.from_onnx(onnx_model_path)


def test_precision_rules() -> None:
    assert resolve_precision("onnxruntime", None, "fp32") == "fp32"
    assert resolve_precision("openvino", None, "int8") == "int8"
    assert resolve_precision("openvino", "bf16", "fp32") == "bf16"
    assert resolve_precision("onnxruntime", "auto", "fp32") == "fp32"
    assert resolve_precision("onnxruntime", "auto", "int8") == "int8"
    assert resolve_precision("openvino", "auto", "int8") == "int8"
    native = "bf16" if openvino_native_bf16() else "fp32"
    assert resolve_precision("openvino", "auto", "fp32") == native, "without a timer: by the CPU's features"
    # With a timer, the faster candidate whatever the CPU says; a single candidate is not timed.
    assert resolve_precision("openvino", "auto", "fp32", lambda names: {"fp32": 5.0, "bf16": 9.0}) == "fp32"
    assert resolve_precision("openvino", "auto", "fp32", lambda names: {"fp32": 9.0, "bf16": 5.0}) == "bf16"
    assert resolve_precision("onnxruntime", "auto", "fp32", lambda names: pytest.fail("timed")) == "fp32"
    assert precision_candidates("openvino", "int8") == ("int8",)
    # Beside an fp32 file, its int8 export joins the candidates on OpenVINO (where the AP gate was measured).
    assert precision_candidates("openvino", "fp32", int8_file=True) == ("fp32", "bf16", "int8")
    assert precision_candidates("onnxruntime", "fp32", int8_file=True) == ("fp32",)
    timings = {"fp32": 9.0, "bf16": 7.0, "int8": 5.0}
    assert resolve_precision("openvino", "auto", "fp32", lambda names: timings, int8_file=True) == "int8"
    assert resolve_precision("openvino", "int8", "fp32", int8_file=True) == "int8"
    for runtime, requested, stored, message in [
        ("openvino", "int8", "fp32", "facelocal export int8"),
        ("openvino", "fp32", "int8", "fp32 export"),
        ("openvino", "bf16", "int8", "fp32 export"),
        ("onnxruntime", "bf16", "fp32", "openvino runtime only"),
        ("openvino", "fp16", "fp32", "unknown precision"),
    ]:
        with pytest.raises(ValueError, match=message):
            resolve_precision(runtime, requested, stored)


def test_export_records_fp32_and_forward_checks_the_request(onnx_model_path) -> None:
    assert model_metadata(onnx_model_path)[PRECISION_KEY] == "fp32"
    with pytest.raises(ValueError, match="facelocal export int8"):
        exported_forward(onnx_model_path, "openvino", precision="int8")
    with pytest.raises(ValueError, match="unknown runtime"):
        exported_forward(onnx_model_path, "tensorrt")


def test_openvino_fp32_equals_onnxruntime_on_raw_outputs(onnx_model_path) -> None:
    rgb = load_image(shared_file("images", "selfie_group.jpg"))
    batch = np.stack([to_canvas(rgb)] * 2)
    want = exported_forward(onnx_model_path, "onnxruntime")(batch)
    got = exported_forward(onnx_model_path, "openvino", threads=1, precision="fp32")(batch)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape and a.dtype == np.float32
    np.testing.assert_allclose(got[1], want[1], atol=1e-4)
    np.testing.assert_allclose(got[0], want[0], atol=0.01)  # canvas pixels
    np.testing.assert_allclose(got[2], want[2], atol=0.01)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_openvino_finds_the_fp32_faces(onnx_model_path, fp32_reference, precision) -> None:
    candidate = Detector.from_onnx(onnx_model_path, runtime="openvino", precision=precision)
    assert_same_faces(fp32_reference, candidate, TOLERANCES[precision])


def test_openvino_outputs_outlive_the_next_call(onnx_model_path) -> None:
    """The service keeps a batch's outputs while the next batch runs: they must be copies."""
    forward = exported_forward(onnx_model_path, "openvino", precision="fp32")
    batch = to_canvas(load_image(shared_file("images", "selfie_group.jpg")))[None]
    first = forward(batch)
    kept = [a.copy() for a in first]
    forward(np.zeros_like(batch))
    for a, b in zip(first, kept, strict=True):
        np.testing.assert_array_equal(a, b)


def test_openvino_compiles_a_repeated_shape_for_itself_and_answers_the_same(onnx_model_path) -> None:
    forward = OpenVinoForward(onnx_model_path, threads=1)
    one = to_canvas(load_image(shared_file("images", "selfie_group.jpg")))[None]
    two = np.concatenate([one, one[:, :, ::-1].copy()])
    shape_free = [forward(one), forward(two)]
    assert forward.specialised_shapes == []
    specialised = [forward(one), forward(two)]
    assert forward.specialised_shapes == [one.shape, two.shape]
    for want, got in zip(shape_free, specialised, strict=True):
        np.testing.assert_allclose(got[1], want[1], atol=1e-4)
        np.testing.assert_allclose(got[0], want[0], atol=0.01)
    np.testing.assert_allclose(specialised[1][1][0], specialised[0][1][0], atol=1e-4)
    for height in range(64, 64 + 32 * forward.MAX_SPECIALISED + 64, 32):  # more shapes than it keeps
        for _ in range(forward.SPECIALISE_AFTER):
            forward(np.zeros((1, 3, height, 64), np.uint8))
    assert len(forward.specialised_shapes) == forward.MAX_SPECIALISED


def test_openvino_specialises_no_more_pixels_than_its_budget(onnx_model_path, monkeypatch) -> None:
    monkeypatch.setattr(OpenVinoForward, "MAX_SPECIALISED_PIXELS", 3 * 64 * 64)
    forward = OpenVinoForward(onnx_model_path, threads=1)
    for shape in [(2, 3, 64, 64), (1, 3, 64, 96), (1, 3, 64, 64)]:
        for _ in range(forward.SPECIALISE_AFTER):
            forward(np.zeros(shape, np.uint8))
    assert forward.specialised_shapes == [(2, 3, 64, 64), (1, 3, 64, 64)]


def _quantized_convs(path) -> set[str]:
    """Names of the Conv nodes whose input goes through a DequantizeLinear (quantised activations)."""
    graph = onnx.load(str(path)).graph
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    return {n.name for n in graph.node if n.op_type == "Conv" and n.input[0] in dequantized}


def test_int8_quantisation_keeps_the_chosen_layers_fp32_and_is_deterministic(
    onnx_model_path, quick_int8_model_path, tmp_path
) -> None:
    first = quick_int8_model_path
    images = calibration_images([shared_file("images", "selfie_group.jpg").parent])
    assert [p.name for p in images] == sorted(PHOTOS)
    second = quantize_int8(onnx_model_path, tmp_path / "b.onnx", images)
    assert first.read_bytes() == second.read_bytes()
    assert model_metadata(first)[PRECISION_KEY] == "int8"
    assert model_metadata(first)["facelocal.config"] == model_metadata(onnx_model_path)["facelocal.config"]
    convs = {n.name: n for n in onnx.load(str(onnx_model_path)).graph.node if n.op_type == "Conv"}
    depthwise = {name for name, n in convs.items() if any(a.name == "group" and a.i > 1 for a in n.attribute)}
    heads = {name for name in convs if "Head." in name}
    assert len(depthwise) == 13 and len(heads) == 9
    assert _quantized_convs(first) == set(convs) - depthwise - heads
    assert KEEP_FP32 == QuantizeConfig().keep_fp32
    int8 = exported_forward(first, "openvino")(np.zeros((1, 3, 64, 64), np.uint8))
    assert [a.shape for a in int8] == [(1, 168, 4), (1, 168), (1, 168, 10)]


def test_auto_times_the_int8_export_beside_the_fp32_file(onnx_model_path, quick_int8_model_path, tmp_path) -> None:
    auto = load_exported(onnx_model_path, "openvino", threads=1, precision="auto", int8_path=quick_int8_model_path)
    assert set(auto.precision_ms) == {"fp32", "bf16", "int8"}
    assert auto.precision == min(auto.precision_ms, key=auto.precision_ms.__getitem__)
    assert auto.metadata == model_metadata(onnx_model_path), "the served model's own metadata"
    # Asked for int8, it runs the quantised file.
    batch = np.stack([to_canvas(load_image(shared_file("images", "selfie_group.jpg")))])
    int8 = load_exported(onnx_model_path, "openvino", threads=1, precision="int8", int8_path=quick_int8_model_path)
    assert int8.precision == "int8"
    quantised = exported_forward(quick_int8_model_path, "openvino", threads=1)
    for got, want in zip(int8.forward(batch), quantised(batch), strict=True):
        np.testing.assert_array_equal(got, want)
    # A file that is not int8, or the int8 export of another model, is refused before anything is timed.
    with pytest.raises(ValueError, match="not a quantised file"):
        load_exported(onnx_model_path, "openvino", precision="auto", int8_path=onnx_model_path)
    other = onnx.load(str(quick_int8_model_path))
    next(entry for entry in other.metadata_props if entry.key == "facelocal.config").value = "resnet50"
    onnx.save(other, str(tmp_path / "other.onnx"))
    with pytest.raises(ValueError, match=r"not the int8 export of the served model \(facelocal.config differs\)"):
        load_exported(onnx_model_path, "openvino", precision="auto", int8_path=tmp_path / "other.onnx")


@pytest.fixture(scope="session")
def shipped_int8_model(onnx_model_path, tmp_path_factory):
    """The int8 file ``facelocal export int8`` makes with its default calibration (about a minute on 2 cores)."""
    from facelocal.cli.common import DEFAULT_CALIBRATION

    root = shared_file("images", "selfie_group.jpg").parents[1]
    folders = [root / folder for folder in DEFAULT_CALIBRATION]
    return quantize_int8(onnx_model_path, tmp_path_factory.mktemp("int8") / "int8.onnx", calibration_images(folders))


@pytest.mark.slow
def test_shipped_int8_finds_the_fp32_faces(shipped_int8_model, fp32_reference) -> None:
    candidate = Detector.from_onnx(shipped_int8_model, runtime="openvino")
    assert_same_faces(fp32_reference, candidate, TOLERANCES["int8"])
