"""model_repository/: every config.pbtxt parses with Triton's ModelConfig schema and fits the exported graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format

from facelocal.contract import INPUT_NAME, OUTPUT_NAMES
from service.backends.triton_config import (
    compact_model_shape,
    is_mesh_config,
    mesh_model_batch,
    parse_model_config,
    read_model_config,
)
from tests.local.tritonserver import CPU_MODEL_CONFIG, MESH_MODEL_CONFIG, ROOT, write_python_model

REPOSITORY = ROOT / "model_repository"
ALL_CONFIGS = sorted(REPOSITORY.glob("*/config.pbtxt"))
CONFIGS = [path for path in ALL_CONFIGS if not is_mesh_config(read_model_config(path))]  # the detectors
MESH_CONFIGS = [path for path in ALL_CONFIGS if is_mesh_config(read_model_config(path))]
PLATFORMS = {"retinaface": ("onnxruntime_onnx", "KIND_CPU"), "retinaface_trt": ("tensorrt_plan", "KIND_GPU")}
MESH_PLATFORMS = {"facemesh": ("onnxruntime_onnx", "KIND_CPU"), "facemesh_trt": ("tensorrt_plan", "KIND_GPU")}


def test_repository_holds_the_cpu_and_gpu_models():
    assert sorted(path.parent.name for path in CONFIGS) == sorted(PLATFORMS)
    assert sorted(path.parent.name for path in MESH_CONFIGS) == sorted(MESH_PLATFORMS)


@pytest.mark.parametrize("path", MESH_CONFIGS, ids=lambda path: path.parent.name)
def test_mesh_configs_describe_the_exported_facemesh_with_dynamic_batching(path: Path):
    from tritonclient.grpc import model_config_pb2

    config = read_model_config(path)
    platform, kind = MESH_PLATFORMS[path.parent.name]
    assert config.name == path.parent.name and config.platform == platform
    assert [model_config_pb2.ModelInstanceGroup.Kind.Name(group.kind) for group in config.instance_group] == [kind]
    batch = mesh_model_batch(config)
    preferred = list(config.dynamic_batching.preferred_batch_size)
    assert batch >= 32 and preferred == sorted(preferred) and preferred[-1] == batch


def test_mesh_export_fits_the_mesh_config(mesh_repository_onnx: Path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(mesh_repository_onnx), providers=["CPUExecutionProvider"])
    config = read_model_config(MESH_MODEL_CONFIG)
    (graph_input,) = session.get_inputs()
    assert (graph_input.name, graph_input.type) == (config.input[0].name, "tensor(uint8)")
    assert graph_input.shape[1:] == list(config.input[0].dims) and not isinstance(graph_input.shape[0], int)
    vertices, logits = session.run(None, {"crops": np.zeros((2, 192, 192, 3), np.uint8)})
    declared = {tensor.name: list(tensor.dims) for tensor in config.output}
    assert {"vertices": list(vertices.shape[1:]), "presence_logit": list(logits.shape[1:])} == declared


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.parent.name)
def test_config_parses_and_describes_a_batched_compact_model(path: Path):
    from tritonclient.grpc import model_config_pb2

    config = read_model_config(path)
    platform, kind = PLATFORMS[path.parent.name]
    assert config.name == path.parent.name, "Triton requires the model name to match its folder"
    assert config.platform == platform
    assert [model_config_pb2.ModelInstanceGroup.Kind.Name(group.kind) for group in config.instance_group] == [kind]
    shape = compact_model_shape(config)
    assert shape.max_batch_size >= 16
    preferred = list(config.dynamic_batching.preferred_batch_size)
    assert preferred and preferred == sorted(preferred) and preferred[-1] == shape.max_batch_size
    assert 0 < config.dynamic_batching.max_queue_delay_microseconds <= 10_000


def test_cpu_and_gpu_models_are_the_same_graph():
    cpu, gpu = (compact_model_shape(read_model_config(REPOSITORY / name / "config.pbtxt")) for name in PLATFORMS)
    assert (cpu.canvas, cpu.top_k, cpu.preset, cpu.dense) == (gpu.canvas, gpu.top_k, gpu.preset, gpu.dense)


def test_compact_graph_gives_the_embedded_graphs_best_anchors(
    compact_onnx_path: Path, onnx_model_path: Path, compact_shape, photo_canvases: np.ndarray
):
    """Triton's fixed-canvas top-k graph returns the embedded graph's best anchors for the same uint8 canvases."""
    import onnxruntime as ort

    compact = ort.InferenceSession(str(compact_onnx_path), providers=["CPUExecutionProvider"])
    dense = ort.InferenceSession(str(onnx_model_path), providers=["CPUExecutionProvider"])
    boxes, scores, landmarks = compact.run(list(OUTPUT_NAMES), {INPUT_NAME: photo_canvases})
    all_boxes, all_scores, all_landmarks = dense.run(list(OUTPUT_NAMES), {INPUT_NAME: photo_canvases})
    best = np.argsort(-all_scores, axis=1, kind="stable")[:, : compact_shape.top_k]
    np.testing.assert_allclose(scores, np.take_along_axis(all_scores, best, 1), atol=1e-6)
    np.testing.assert_allclose(boxes, np.take_along_axis(all_boxes, best[..., None], 1), atol=1e-3)
    np.testing.assert_allclose(landmarks, np.take_along_axis(all_landmarks, best[..., None], 1), atol=1e-3)


def test_misspelt_field_fails_to_parse():
    text = CPU_MODEL_CONFIG.read_text().replace("max_batch_size", "max_batch_sise")
    with pytest.raises(text_format.ParseError, match="max_batch_sise"):
        parse_model_config(text)


def test_exported_graph_matches_the_config(compact_onnx_path: Path, compact_shape):
    import onnxruntime as ort

    session = ort.InferenceSession(str(compact_onnx_path), providers=["CPUExecutionProvider"])
    config = read_model_config(CPU_MODEL_CONFIG)
    (graph_input,) = session.get_inputs()
    assert graph_input.name == config.input[0].name
    assert graph_input.shape[1:] == list(config.input[0].dims)
    assert not isinstance(graph_input.shape[0], int), "the batch dimension must stay dynamic"
    declared = {tensor.name: list(tensor.dims) for tensor in config.output}
    assert sorted(output.name for output in session.get_outputs()) == sorted(declared)
    assert graph_input.type == "tensor(uint8)"
    batch = np.zeros((2, 3, compact_shape.canvas, compact_shape.canvas), np.uint8)
    boxes, scores, landmarks = session.run(["boxes", "scores", "landmarks"], {"images": batch})
    # The graph's static shapes are partly symbolic; what it returns must have the declared dims.
    produced = {"boxes": boxes.shape, "scores": scores.shape, "landmarks": landmarks.shape}
    assert {name: [2, *dims] for name, dims in declared.items()} == {k: list(v) for k, v in produced.items()}
    assert np.all(np.diff(scores, axis=1) <= 0), "top-k outputs come sorted by score"


def test_python_backend_twin_keeps_everything_but_the_backend(tmp_path: Path, compact_onnx_path: Path):
    name = write_python_model(tmp_path, compact_onnx_path)
    twin = read_model_config(tmp_path / name / "config.pbtxt")
    source = read_model_config(CPU_MODEL_CONFIG)
    assert (twin.backend, twin.platform, source.platform) == ("python", "", "onnxruntime_onnx")
    for field in ("name", "max_batch_size", "input", "output", "instance_group", "dynamic_batching"):
        assert getattr(twin, field) == getattr(source, field), field
