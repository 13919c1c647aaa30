"""``facelocal export onnx`` and ``facelocal export int8``: write the network with its decode as ONNX, in fp32 or
quantised to int8 (for OpenVINO), or (``export onnx --mesh``) the FaceMesh stage."""

from __future__ import annotations

import argparse
from pathlib import Path

from facelocal.cli.common import add_calibration_argument, add_mesh_weights_argument, add_model_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export the model", description=__doc__)
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    onnx = formats.add_parser("onnx", help="ONNX with dynamic batch, height and width")
    add_model_arguments(onnx)
    onnx.add_argument("--out", type=Path, required=True)
    onnx.add_argument("--canvas", type=int, help="fix the input to CANVAS x CANVAS (for Triton); batch stays dynamic")
    onnx.add_argument("--top-k", type=int, help="return only the K best anchors, sorted (compact outputs)")
    onnx.add_argument("--opset", type=int, default=17)
    onnx.add_argument(
        "--mesh",
        action="store_true",
        help="export the FaceMesh stage from --mesh-weights instead of the detector: uint8 (B, 192, 192, 3) crops "
        "in, 468 vertices and the presence logit out, dynamic batch",
    )
    add_mesh_weights_argument(onnx)
    onnx.set_defaults(func=run_onnx)
    int8 = formats.add_parser(
        "int8",
        help="ONNX quantised to int8 (per-channel weights; decode, heads and depthwise layers kept fp32)",
        description="Static post-training quantisation with NNCF (the int8 extra); reproducible for the same "
        "weights, images and versions. Run it with --backend openvino --precision int8.",
    )
    add_model_arguments(int8)
    int8.add_argument("--out", type=Path, required=True)
    add_calibration_argument(int8)
    int8.set_defaults(func=run_int8)


def run_onnx(args: argparse.Namespace) -> int:
    from facelocal.cli.common import load_torch_model
    from facelocal.export import export_onnx

    if args.mesh:
        return run_mesh_onnx(args)

    canvas = (args.canvas, args.canvas) if args.canvas else (640, 640)
    out = export_onnx(
        load_torch_model(args), args.out, dynamic=args.canvas is None, canvas=canvas, top_k=args.top_k, opset=args.opset
    )
    print(f"wrote {out}")
    return 0


def run_mesh_onnx(args: argparse.Namespace) -> int:
    from facelocal.cli import CommandError
    from facelocal.cli.common import load_mesh_model
    from facelocal.export import export_mesh_onnx
    from facelocal.weights import file_sha256

    if args.canvas or args.top_k or args.weights or args.preset:
        raise CommandError("--mesh takes --mesh-weights, --out and --opset only (the crop is always 192x192)")
    model, source = load_mesh_model(args)
    out = export_mesh_onnx(model, args.out, opset=args.opset, source=file_sha256(source))
    print(f"wrote {out} (FaceMesh from {source})")
    return 0


def run_int8(args: argparse.Namespace) -> int:
    from facelocal.cli.common import export_model, load_torch_model

    print(f"wrote {export_model(load_torch_model(args), args.out, 'int8', args.calibration)}")
    return 0
