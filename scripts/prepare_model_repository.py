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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", type=Path, default=ROOT / "model_repository")
    parser.add_argument("--model", default="retinaface", help="model folder holding config.pbtxt")
    parser.add_argument("--weights", help="checkpoint (else $FACELOCAL_WEIGHTS or ~/.config/facelocal/config.toml)")
    parser.add_argument(
        "--mesh-weights", help="face_landmark.tflite for --model facemesh (else $FACELOCAL_MESH_WEIGHTS)"
    )
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
    command = [
        sys.executable,
        "-m",
        "facelocal.cli",
        "export",
        "onnx",
        "--out",
        str(out),
        "--preset",
        shape.preset,
        "--canvas",
        str(shape.canvas),
        "--top-k",
        str(shape.top_k),
    ]
    if args.weights:
        command += ["--weights", args.weights]
    subprocess.run(command, check=True)
    print(
        f"{args.model}: {shape.preset}, uint8 {shape.canvas}x{shape.canvas} canvas, top {shape.top_k}, "
        f"batch <= {shape.max_batch_size}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
