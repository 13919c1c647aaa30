"""ONNX export of the decoded network (anchors and box/landmark decode inside the graph)."""

from __future__ import annotations

from pathlib import Path

import torch

from facelocal.contract import DENSE_KEY, INPUT_NAME, OUTPUT_NAMES, PRESET_KEY, TOP_K_KEY
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
    """Record the config in the file, so a server can name the model without torch or side files."""
    import onnx

    proto = onnx.load(str(path))
    entries = {PRESET_KEY: model.config.name, DENSE_KEY: str(model.config.dense).lower()}
    if top_k is not None:
        entries[TOP_K_KEY] = str(top_k)
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
