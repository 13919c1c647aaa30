"""ONNX export of the decoded network (anchors and box/landmark decode inside the graph)."""

from __future__ import annotations

from pathlib import Path

import torch

from facelocal.models.decoded import DecodedRetinaFace
from facelocal.models.retinaface import RetinaFace
from facelocal.runtime import INPUT_NAME, OUTPUT_NAMES, PRECISION_KEY


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

    Input ``images``: ``(B, 3, H, W)`` float32, BGR minus the mean. Outputs ``boxes`` ``(B, K, 4)``,
    ``scores`` ``(B, K)`` and ``landmarks`` ``(B, K, 10)`` in canvas pixels, where K is every anchor, or
    the ``top_k`` best sorted by score. With ``dynamic`` the batch, height and width are free; otherwise
    only the batch is, and the canvas is fixed (what Triton's batcher needs).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper = DecodedRetinaFace(model.eval(), top_k=top_k).eval()
    height, width = canvas
    example = torch.zeros(1, 3, height, width)
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
    entries = {
        "facelocal.config": model.config.name,
        "facelocal.dense": str(model.config.dense).lower(),
        PRECISION_KEY: "fp32",
    }
    if top_k is not None:
        entries["facelocal.top_k"] = str(top_k)
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
