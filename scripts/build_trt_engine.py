#!/usr/bin/env python3
"""Build the TensorRT FP16 engine Triton serves as model_repository/retinaface_trt (or, given facemesh_trt's
config, the FaceMesh engine), on the GPU that will run it.

A plan file only runs on the GPU model and TensorRT version it was built with, so it is never committed:
this script runs on the serving host (the compose file's ``trt-build`` service does it on first start,
in the NGC TensorRT image of the same release as the Triton image). It reads the canvas and the batch
bound from retinaface_trt/config.pbtxt, so the optimisation profile (batch 1..max_batch_size, fixed
canvas) always matches what Triton's batcher sends.

    python scripts/build_trt_engine.py --onnx model_repository/retinaface/1/model.onnx
    python scripts/build_trt_engine.py --config model_repository/facemesh_trt/config.pbtxt \
        --onnx model_repository/facemesh/1/model.onnx

``--dry-run`` checks the ONNX input against the config and prints the build it would run, without TensorRT.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facelocal.contract import INPUT_NAME  # noqa: E402
from service.backends.triton_config import (  # noqa: E402
    MESH_INPUT,
    compact_model_shape,
    is_mesh_config,
    mesh_model_batch,
    read_model_config,
)

DEFAULT_PRESET = ROOT / "model_repository" / "retinaface_trt" / "config.pbtxt"
WORKSPACE_BYTES = 4 << 30


# Layers that may run in FP16. Everything else (the anchor decode: exp, multiply-add against anchors in
# pixels up to the canvas size, softmax, top-k) stays FP32: on an H100 the network with its decode
# all in FP16 lost most faces on the shared photos, while FP16 convolutions alone kept every face
# (scripts/bench_gpu.py).
FP16_LAYER_TYPES = ("CONVOLUTION", "DECONVOLUTION", "ACTIVATION", "POOLING", "RESIZE", "SCALE")
# FaceMesh has no decode: its PReLUs are Relu/Mul/Sub (ELEMENTWISE) and its channel paddings PADDING, all FP16.
MESH_FP16_LAYER_TYPES = (*FP16_LAYER_TYPES, "ELEMENTWISE", "PADDING", "UNARY", "SHUFFLE")


def keep_decode_in_fp32(network, trt, fp16_types: tuple[str, ...] = FP16_LAYER_TYPES) -> None:
    """Pin every layer outside ``fp16_types`` (and its outputs) to FP32."""
    allowed = {getattr(trt.LayerType, name) for name in fp16_types if hasattr(trt.LayerType, name)}
    floats = (trt.float16, trt.float32)
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        tensors = [layer.get_input(i) for i in range(layer.num_inputs)]
        tensors += [layer.get_output(i) for i in range(layer.num_outputs)]
        # Shape arithmetic (int32/int64) and the uint8 -> float Cast at the input cannot take a float precision.
        if layer.type in allowed or any(t is not None and t.dtype not in floats for t in tensors):
            continue
        layer.precision = trt.float32
        for output in range(layer.num_outputs):
            layer.set_output_type(output, trt.float32)


@dataclass(frozen=True)
class BuildProfile:
    """The one optimisation profile of an engine: input ``name`` at ``(batch, *shape)`` for batch
    ``min_batch..max_batch``, kernels tuned for ``opt_batch``."""

    name: str
    shape: tuple[int, ...]
    min_batch: int
    opt_batch: int
    max_batch: int

    def describe(self) -> str:
        dims = ", ".join(map(str, self.shape))
        return f"{self.name} [{self.min_batch}..{self.max_batch} (opt {self.opt_batch}), {dims}]"


def input_profile(onnx_path: Path, mesh: bool, canvas: int, max_batch: int, opt_batch: int) -> BuildProfile:
    """The optimisation profile for ``onnx_path``, after checking that its one input is the one the config
    describes (name, uint8, a dynamic batch and the config's per-image shape): a mismatch fails here, before
    a build that takes minutes."""
    import onnxruntime as ort

    name, shape = (MESH_INPUT[0], tuple(MESH_INPUT[2])) if mesh else (INPUT_NAME, (3, canvas, canvas))
    (graph_input,) = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).get_inputs()
    per_image = tuple(graph_input.shape[1:])
    if graph_input.name != name or graph_input.type != "tensor(uint8)" or per_image != shape:
        raise ValueError(
            f"{onnx_path}: input {graph_input.name} {graph_input.type} {graph_input.shape}, "
            f"the config wants {name} uint8 [batch, {', '.join(map(str, shape))}]"
        )
    if isinstance(graph_input.shape[0], int):
        raise ValueError(f"{onnx_path}: the batch dimension is fixed at {graph_input.shape[0]}; export it dynamic")
    return BuildProfile(name, shape, min_batch=1, opt_batch=opt_batch, max_batch=max_batch)


def build_engine(onnx_path: Path, profile: BuildProfile, fp16: bool = True, mesh: bool = False) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine for ``profile`` (the detector's ``(B, 3, S, S)``
    canvases, or with ``mesh`` FaceMesh's ``(B, 192, 192, 3)`` uint8 crops).

    The profile's ``opt_batch`` is the batch TensorRT tunes its kernels for; pick the batch the dynamic
    batcher most often forms.
    """
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # Explicit batch is the only mode in TensorRT 10 (the flag is gone there, needed before).
    flags = (
        0 if int(trt.__version__.split(".")[0]) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    )
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "\n".join(str(parser.get_error(index)) for index in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}:\n{errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if fp16:
        if not builder.platform_has_fast_fp16:
            raise RuntimeError("this GPU has no fast FP16; build with --fp32")
        config.set_flag(trt.BuilderFlag.FP16)
        keep_decode_in_fp32(network, trt, MESH_FP16_LAYER_TYPES if mesh else FP16_LAYER_TYPES)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    shapes = builder.create_optimization_profile()
    shapes.set_shape(
        profile.name,
        (profile.min_batch, *profile.shape),
        (profile.opt_batch, *profile.shape),
        (profile.max_batch, *profile.shape),
    )
    config.add_optimization_profile(shapes)

    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeError("TensorRT failed to build the engine (see the log above)")
    return bytes(engine)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", type=Path, default=ROOT / "model_repository" / "retinaface" / "1" / "model.onnx")
    parser.add_argument("--config", type=Path, default=DEFAULT_PRESET, help="the TensorRT model's config.pbtxt")
    parser.add_argument("--out", type=Path, help="default: model.plan in version 1 beside --config")
    parser.add_argument("--opt-batch", type=int, help="batch the kernels are tuned for (default: half the maximum)")
    parser.add_argument("--fp32", action="store_true", help="build in FP32 (parity checks, GPUs without FP16)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the plan exists")
    parser.add_argument("--dry-run", action="store_true", help="check the inputs and print the build, no TensorRT")
    args = parser.parse_args(argv)

    config = read_model_config(args.config)
    mesh = is_mesh_config(config)
    if mesh:
        max_batch, canvas = mesh_model_batch(config), MESH_INPUT[2][0]
    else:
        shape = compact_model_shape(config)
        max_batch, canvas = shape.max_batch_size, shape.canvas
    out = args.out or args.config.parent / "1" / "model.plan"
    if out.exists() and not args.force and not args.dry_run:
        print(f"{out} exists; --force rebuilds it")
        return 0
    if not args.onnx.is_file():
        print(f"{args.onnx} not found: run scripts/prepare_model_repository.py first", file=sys.stderr)
        return 1
    profile = input_profile(args.onnx, mesh, canvas, max_batch, args.opt_batch or max(1, max_batch // 2))
    precision = "FP32" if args.fp32 else "FP16"
    if args.dry_run:
        print(f"would build {out} from {args.onnx}: {precision}, profile {profile.describe()}")
        return 0
    started = time.perf_counter()
    plan = build_engine(args.onnx, profile, fp16=not args.fp32, mesh=mesh)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(plan)
    seconds = time.perf_counter() - started
    print(f"wrote {out} ({len(plan) / 1e6:.1f} MB, {precision}, {profile.describe()}) in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
