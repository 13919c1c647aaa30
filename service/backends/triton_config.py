"""Reading Triton ``config.pbtxt`` files with the ``ModelConfig`` schema that ``tritonclient`` ships.

Parsing through the protobuf schema (not by regex) makes a misspelt field name an error, and gives the export
script, the local tritonserver launcher and the service one reading of the canvas and top-k a model was built for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2
from tritonclient.grpc.model_config_pb2 import ModelConfig

from facelocal.contract import DENSE_KEY, INPUT_NAME, OUTPUT_NAMES, PRESET_KEY


@dataclass(frozen=True)
class CompactModelShape:
    """What a compact RetinaFace model takes and returns, per image.

    Input ``images`` ``(3, canvas, canvas)`` uint8 BGR (:mod:`facelocal.contract`); outputs ``boxes``
    ``(top_k, 4)``, ``scores`` ``(top_k,)``, ``landmarks`` ``(top_k, 10)``. ``max_batch_size`` is the leading
    batch dimension's bound.
    """

    canvas: int
    top_k: int
    max_batch_size: int
    preset: str
    dense: bool


def parse_model_config(text: str) -> ModelConfig:
    """Parse ``config.pbtxt`` text; raises ``text_format.ParseError`` on unknown fields or bad values."""
    return text_format.Parse(text, ModelConfig())


def read_model_config(path: str | Path) -> ModelConfig:
    return parse_model_config(Path(path).read_text())


def compact_model_shape(config: ModelConfig) -> CompactModelShape:
    """Check that ``config`` describes a square-canvas, top-k RetinaFace and return its sizes."""
    inputs = {tensor.name: list(tensor.dims) for tensor in config.input}
    outputs = {tensor.name: list(tensor.dims) for tensor in config.output}
    if list(inputs) != [INPUT_NAME] or sorted(outputs) != sorted(OUTPUT_NAMES):
        raise ValueError(f"model {config.name!r}: expected input {INPUT_NAME!r} and outputs {OUTPUT_NAMES}")
    input_type = model_config_pb2.DataType.Name(config.input[0].data_type)
    if input_type != "TYPE_UINT8":
        raise ValueError(f"model {config.name!r}: input must be TYPE_UINT8 (BGR pixels), got {input_type}")
    channels, height, width = inputs[INPUT_NAME]
    if channels != 3 or height != width or height <= 0:
        raise ValueError(f"model {config.name!r}: input dims must be [3, S, S], got {inputs[INPUT_NAME]}")
    top_k = outputs["scores"][0]
    expected = {"boxes": [top_k, 4], "scores": [top_k], "landmarks": [top_k, 10]}
    if outputs != expected or top_k <= 0:
        raise ValueError(f"model {config.name!r}: outputs must be {expected}, got {outputs}")
    parameters = {key: value.string_value for key, value in config.parameters.items()}
    if PRESET_KEY not in parameters:
        raise ValueError(f"model {config.name!r}: parameter {PRESET_KEY!r} (the facelocal preset) is missing")
    return CompactModelShape(
        canvas=height,
        top_k=top_k,
        max_batch_size=config.max_batch_size,
        preset=parameters[PRESET_KEY],
        dense=parameters.get(DENSE_KEY, "false") == "true",
    )


# The FaceMesh model (model_repository/facemesh, facemesh_trt): uint8 crops in, vertices and presence out.
MESH_INPUT = ("crops", "TYPE_UINT8", [192, 192, 3])
MESH_OUTPUTS = {"vertices": ("TYPE_FP32", [468, 3]), "presence_logit": ("TYPE_FP32", [1])}


def is_mesh_config(config: ModelConfig) -> bool:
    return [tensor.name for tensor in config.input] == [MESH_INPUT[0]]


def mesh_model_batch(config: ModelConfig) -> int:
    """Check that ``config`` describes the FaceMesh graph facelocal exports; returns its ``max_batch_size``."""
    type_name = model_config_pb2.DataType.Name
    inputs = [(t.name, type_name(t.data_type), list(t.dims)) for t in config.input]
    outputs = {t.name: (type_name(t.data_type), list(t.dims)) for t in config.output}
    if inputs != [MESH_INPUT] or outputs != MESH_OUTPUTS:
        raise ValueError(
            f"model {config.name!r} is not FaceMesh: inputs {inputs}, outputs {outputs}; expected {[MESH_INPUT]}, "
            f"{MESH_OUTPUTS}"
        )
    if config.max_batch_size < 1:
        raise ValueError(f"model {config.name!r}: FaceMesh needs a batch dimension (max_batch_size >= 1)")
    return config.max_batch_size
