#!/usr/bin/env python3
"""Export the ONNX model that model_repository/retinaface serves (and retinaface_trt is built from), or with
``--model facemesh`` the FaceMesh graph that model_repository/facemesh serves (and facemesh_trt is built from).

The canvas and top-k come from the model's config.pbtxt, so the exported graph always matches the
config Triton checks it against. Needs the torch extra (export); the plan file is built separately by
scripts/build_trt_engine.py on the GPU that will run it.

    python scripts/prepare_model_repository.py --weights path/to/mobilenet0.25_Final.pth
    python scripts/prepare_model_repository.py --model facemesh --mesh-weights path/to/face_landmark.tflite
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.backends.triton_config import (  # noqa: E402
    compact_model_shape,
    is_mesh_config,
    mesh_model_batch,
    read_model_config,
)


def take_uint8_pixels(path: Path) -> None:
    """Make the graph take BGR uint8 pixels: ``images`` (uint8) -> Cast -> minus the mean -> the network.

    The service's float32 canvases are uint8 pixels minus an integer mean (padding is the mean colour),
    so the uint8 form is lossless and a quarter of the bytes on the wire.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from facelocal.config import BGR_MEAN

    model = onnx.load(str(path))
    graph = model.graph
    (network_input,) = graph.input
    float_name = "images_float"
    for node in graph.node:
        node.input[:] = [float_name if name == network_input.name else name for name in node.input]
    pixels = helper.make_tensor_value_info(network_input.name, TensorProto.UINT8, None)
    pixels.type.tensor_type.shape.CopyFrom(network_input.type.tensor_type.shape)
    mean = numpy_helper.from_array(np.array(BGR_MEAN, np.float32).reshape(1, 3, 1, 1), "bgr_mean")
    prefix = [
        helper.make_node("Cast", [network_input.name], ["images_cast"], to=TensorProto.FLOAT, name="pixels_to_float"),
        helper.make_node("Sub", ["images_cast", "bgr_mean"], [float_name], name="subtract_mean"),
    ]
    graph.initializer.append(mean)
    del graph.input[:]
    graph.input.append(pixels)
    new_nodes = prefix + list(graph.node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", type=Path, default=ROOT / "model_repository")
    parser.add_argument("--model", default="retinaface", help="model folder holding config.pbtxt")
    parser.add_argument("--weights", help="checkpoint (else $FACELOCAL_WEIGHTS or ~/.config/facelocal/config.toml)")
    parser.add_argument("--mesh-weights", help="face_landmark.tflite for --model facemesh (else $FACELOCAL_MESH_WEIGHTS)")
    parser.add_argument("--out", type=Path, help="where to write the ONNX (default: <repository>/<model>/1/model.onnx)")
    args = parser.parse_args(argv)

    config = read_model_config(args.repository / args.model / "config.pbtxt")
    out = args.out or args.repository / args.model / "1" / "model.onnx"
    if is_mesh_config(config):
        batch = mesh_model_batch(config)
        command = [sys.executable, "-m", "facelocal.cli", "export", "onnx", "--mesh", "--out", str(out)]
        if args.mesh_weights:
            command += ["--mesh-weights", args.mesh_weights]
        subprocess.run(command, check=True)
        print(f"{args.model}: FaceMesh, uint8 192x192 crops, batch <= {batch}")
        return 0
    shape = compact_model_shape(config)
    command = [sys.executable, "-m", "facelocal.cli", "export", "onnx", "--out", str(out),
               "--config", shape.preset, "--canvas", str(shape.canvas), "--top-k", str(shape.top_k)]
    if args.weights:
        command += ["--weights", args.weights]
    subprocess.run(command, check=True)
    if shape.pixels_uint8:
        take_uint8_pixels(out)
    pixels = "uint8" if shape.pixels_uint8 else "float32"
    print(f"{args.model}: {shape.preset}, {pixels} {shape.canvas}x{shape.canvas} canvas, top {shape.top_k}, batch <= {shape.max_batch_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
