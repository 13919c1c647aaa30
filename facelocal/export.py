"""ONNX export of the decoded network (anchors and box/landmark decode inside the graph)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from facelocal.contract import (
    DENSE_KEY,
    INPUT_NAME,
    MESH_VERTICES_KEY,
    MODEL_KEY,
    OUTPUT_NAMES,
    PRECISION_KEY,
    PRESET_KEY,
    SOURCE_SHA256_KEY,
    TOP_K_KEY,
)
from facelocal.models.decoded import DecodedRetinaFace
from facelocal.models.retinaface import RetinaFace


def export_onnx(
    model: RetinaFace,
    out: str | Path,
    *,
    dynamic: bool = True,
    canvas: tuple[int, int] = (640, 640),
    top_k: int | None = None,
    opset: int = 17,
) -> Path:
    """Write ``model`` with its decode as ONNX.

    Input and outputs as :mod:`facelocal.contract` says: uint8 BGR canvases in (the graph subtracts the mean),
    faces in canvas pixels out, every anchor or the ``top_k`` best sorted by score. With ``dynamic`` the
    batch, height and width are free; otherwise only the batch is, and the canvas is fixed (what Triton's
    batcher needs). This is the one recipe for every serving graph: ``make model``, Docker and Triton.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper = DecodedRetinaFace(model.eval(), top_k=top_k).eval()
    height, width = canvas
    example = torch.zeros(1, 3, height, width, dtype=torch.uint8)
    axes = {INPUT_NAME: {0: "batch"}, **{name: {0: "batch"} for name in OUTPUT_NAMES}}
    if dynamic:
        axes[INPUT_NAME].update({2: "height", 3: "width"})
        if top_k is None:
            for name in OUTPUT_NAMES:
                axes[name][1] = "anchors"
    torch.onnx.export(
        wrapper,
        (example,),
        str(out),
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        dynamic_axes=axes,
        opset_version=opset,
        dynamo=False,
    )
    _stamp_metadata(out, model, top_k)
    return out


def _stamp_metadata(path: Path, model: RetinaFace, top_k: int | None) -> None:
    """Record the config and precision in the file, so a server can name the model without torch or side files."""
    import onnx

    proto = onnx.load(str(path))
    entries = {PRESET_KEY: model.config.name, DENSE_KEY: str(model.config.dense).lower(), PRECISION_KEY: "fp32"}
    if top_k is not None:
        entries[TOP_K_KEY] = str(top_k)
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))


class _MeshFromPixels(torch.nn.Module):
    """FaceMesh taking uint8 RGB crops: the graph divides by 255 itself, so a crop travels as 110 kB, not 442 kB."""

    def __init__(self, mesh: torch.nn.Module) -> None:
        super().__init__()
        self.mesh = mesh

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mesh(crops.to(torch.float32) / 255.0)


def export_mesh_onnx(model: torch.nn.Module, out: str | Path, *, opset: int = 17, source: str | None = None) -> Path:
    """Write a :class:`~facelocal.models.facemesh.FaceMeshNet` as ONNX with a dynamic batch.

    Input ``crops`` ``(B, 192, 192, 3)`` uint8 RGB (see :mod:`facelocal.facemesh`); outputs ``vertices``
    ``(B, 468, 3)`` in crop pixels and ``presence_logit`` ``(B, 1)``. PReLU is written as
    ``Relu(x) - a * Relu(-x)`` (the module computes it that way), which ONNX Runtime's CPU provider runs much
    faster than its ``PRelu`` kernel. ``source`` (the .tflite's sha256) is recorded in the metadata.
    """
    from facelocal.facemesh import INPUT_SIZE, ONNX_INPUT, ONNX_OUTPUTS

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _MeshFromPixels(model.eval()).eval()
    example = torch.zeros(1, INPUT_SIZE, INPUT_SIZE, 3, dtype=torch.uint8)
    with warnings.catch_warnings():
        # torch cannot fold the reversed slice of its own F.pad lowering; _constant_folded below does.
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        torch.onnx.export(
            wrapper,
            (example,),
            str(out),
            input_names=[ONNX_INPUT],
            output_names=list(ONNX_OUTPUTS),
            dynamic_axes={name: {0: "batch"} for name in (ONNX_INPUT, *ONNX_OUTPUTS)},
            opset_version=opset,
            dynamo=False,
        )
    import onnx

    proto = fold_pads_into_convs(_constant_folded(out))
    onnx.checker.check_model(proto)
    entries = {MODEL_KEY: "facemesh", MESH_VERTICES_KEY: "468"}
    if source:
        entries[SOURCE_SHA256_KEY] = source
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(out))
    return out


def _constant_folded(path: Path):
    """``path`` with constant sub-graphs folded (ONNX Runtime's basic, hardware-independent level).

    torch writes each ``F.pad`` as a small shape computation feeding ``Pad``; folded, the pads are constants.
    """
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.log_severity_level = 3  # it notes each initializer the folding left unused
        options.optimized_model_filepath = str(Path(tmp) / "folded.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return onnx.load(options.optimized_model_filepath)


def fold_pads_into_convs(proto):
    """Remove each constant zero ``Pad`` of the spatial axes whose only readers are unpadded ``Conv`` nodes, giving
    those convolutions the padding instead (ONNX ``Conv`` pads may be asymmetric, torch's may not). Same values,
    one memory pass fewer per stride-2 layer."""
    from collections import defaultdict

    from onnx import numpy_helper

    graph = proto.graph
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    readers = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            readers[name].append(node)
    folded = []
    for node in graph.node:
        if node.op_type != "Pad" or len(node.input) < 2 or node.input[1] not in constants:
            continue
        if any(attribute.name == "mode" and attribute.s not in (b"", b"constant") for attribute in node.attribute):
            continue
        if len(node.input) > 2 and node.input[2] and (node.input[2] not in constants or constants[node.input[2]].any()):
            continue
        pads = [int(v) for v in constants[node.input[1]]]
        convs = readers[node.output[0]]
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or not convs:
            continue  # pads batch or channels, or not a 4-D tensor
        if any(conv.op_type != "Conv" or _conv_pads(conv) != [0, 0, 0, 0] for conv in convs):
            continue
        for conv in convs:
            for attribute in conv.attribute:
                if attribute.name == "pads":
                    attribute.ints[:] = [pads[2], pads[3], pads[6], pads[7]]  # top, left, bottom, right
            if not any(attribute.name == "pads" for attribute in conv.attribute):
                from onnx import helper

                conv.attribute.append(helper.make_attribute("pads", [pads[2], pads[3], pads[6], pads[7]]))
            conv.input[0] = node.input[0]
        folded.append(node)
    for node in folded:
        graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for tensor in [tensor for tensor in graph.initializer if tensor.name not in used]:
        graph.initializer.remove(tensor)  # left behind by the folding
    return proto


def _conv_pads(node) -> list[int]:
    for attribute in node.attribute:
        if attribute.name == "pads":
            return list(attribute.ints)
        if attribute.name == "auto_pad" and attribute.s not in (b"", b"NOTSET"):
            return [-1]
    return [0, 0, 0, 0]
