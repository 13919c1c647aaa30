#!/usr/bin/env python3
"""Embedded ONNX Runtime against Triton (gRPC, and gRPC with shared memory), in one run on loopback.

Each backend runs behind the same DetectionCore (JPEG decode, letterbox, micro-batching, NMS): the
embedded one runs the service's default graph (make model: every anchor decoded), the Triton ones the
compact graph of model_repository/retinaface (top-k outputs); both take uint8 canvases.
Triton is the nvidia-pytriton binary the Triton tests run too (tests/local/tritonserver.py): its Python
backend runs that ONNX file with onnxruntime, as the onnxruntime_onnx platform would.

Prints the bytes each image costs on the wire (raw heads vs compact outputs, the input canvas) and
images/s at concurrency 1 and 16 through the core, and ms/image of the backend alone on a full
batch, with each Triton path as a ratio of the embedded one.

    python scripts/prepare_model_repository.py --weights W   # once
    python scripts/bench_triton.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facelocal.contract import INPUT_DTYPE  # noqa: E402
from service.backends import create_backend  # noqa: E402
from service.backends.triton_config import compact_model_shape, read_model_config  # noqa: E402
from service.core import DetectionCore  # noqa: E402
from service.schemas import DetectOptions  # noqa: E402
from service.settings import Settings  # noqa: E402
from tests.local.tritonserver import CPU_MODEL_CONFIG, start_local_triton  # noqa: E402

FLOAT_BYTES = 4
# The network's raw heads per anchor: 4 box offsets, 2 class logits, 10 landmark offsets.
RAW_HEAD_FLOATS = 4 + 2 + 10
DEFAULT_IMAGES = [
    ROOT.parent / "shared" / "data" / "images" / name for name in ("selfie_group.jpg", "wider_train_band_crowd.jpg")
]


def anchors_at(canvas: int) -> int:
    """RetinaFace's anchor count on a square canvas: two anchors per cell at strides 8, 16 and 32."""
    return sum(2 * (canvas // stride) ** 2 for stride in (8, 16, 32))


def wire_bytes(canvas: int, top_k: int) -> dict[str, int]:
    return {
        "input canvas (3 x S x S float32)": 3 * canvas * canvas * FLOAT_BYTES,
        "input canvas (3 x S x S uint8, what is sent)": 3 * canvas * canvas,
        f"raw heads ({anchors_at(canvas)} anchors x {RAW_HEAD_FLOATS} floats)": anchors_at(canvas)
        * RAW_HEAD_FLOATS
        * FLOAT_BYTES,
        f"compact top-{top_k} (boxes, scores, landmarks)": top_k * (4 + 1 + 10) * FLOAT_BYTES,
    }


async def throughput(core: DetectionCore, images: list[bytes], concurrency: int, requests: int) -> float:
    """Images per second for ``requests`` detections, ``concurrency`` of them in flight at a time."""
    options = DetectOptions()
    queue = list(range(requests))

    async def worker() -> None:
        while queue:
            index = queue.pop()
            await core.detect(images[index % len(images)], options)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests / (time.perf_counter() - started)


async def inference_ms_per_image(backend, batch_size: int, canvas: int, repeats: int = 4) -> float:
    """The backend alone (no decode, letterbox or NMS) on a full batch: ms per image."""
    batch = np.random.default_rng(0).integers(0, 256, (batch_size, 3, canvas, canvas), dtype=INPUT_DTYPE)
    await backend.infer(batch)
    started = time.perf_counter()
    for _ in range(repeats):
        await backend.infer(batch)
    return (time.perf_counter() - started) * 1000 / (repeats * batch_size)


async def measure(settings: Settings, images: list[bytes], requests: dict[int, int]) -> tuple[dict, bool]:
    """images/s through the core at each concurrency, and ms/image of the backend alone."""
    backend = await asyncio.to_thread(create_backend, settings)
    core = DetectionCore(settings, backend)
    await core.start()
    try:
        await throughput(core, images, 4, 8)  # warm-up: thread pools, first batches
        rates = {c: await throughput(core, images, c, n) for c, n in requests.items()}
        rates["infer"] = await inference_ms_per_image(backend, settings.max_batch_size, settings.canvas_size)
        return rates, bool(getattr(backend, "uses_shared_memory", False))
    finally:
        await core.stop()
        await backend.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--onnx",
        type=Path,
        default=ROOT / "model_repository" / "retinaface" / "1" / "model.onnx",
        help="Triton's compact graph (scripts/prepare_model_repository.py)",
    )
    parser.add_argument(
        "--embedded-onnx",
        type=Path,
        default=ROOT / "artifacts" / "model.onnx",
        help="the in-process backend's graph (make model)",
    )
    parser.add_argument("--images", type=Path, nargs="+", default=DEFAULT_IMAGES)
    parser.add_argument("--requests", type=int, default=48, help="detections per measurement at concurrency 16")
    parser.add_argument("--max-batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    if not args.onnx.is_file():
        parser.error(f"{args.onnx} not found: run scripts/prepare_model_repository.py --weights W first")
    if not args.embedded_onnx.is_file():
        parser.error(f"{args.embedded_onnx} not found: run make model (facelocal export onnx --out ...)")

    shape = compact_model_shape(read_model_config(CPU_MODEL_CONFIG))
    print("bytes per image on the wire:")
    for name, size in wire_bytes(shape.canvas, shape.top_k).items():
        print(f"  {name:48s} {size:>10,d}")
    images = [path.read_bytes() for path in args.images]
    requests = {1: max(8, args.requests // 3), 16: args.requests}
    common = {
        "model_path": args.embedded_onnx,
        "max_batch_size": args.max_batch_size,
        "canvas_size": shape.canvas,
        # Detection alone: no FaceMesh stage on either side.
        "mesh_model_path": None,
        "triton_mesh_model": "",
    }

    with tempfile.TemporaryDirectory(prefix="bench-triton-") as workdir:
        triton, model = start_local_triton(Path(workdir), args.onnx)
        try:

            def on_triton(**overrides) -> Settings:
                # A Python-backend Triton on a busy 2-core machine can take seconds for a batch of 8.
                return Settings(
                    backend="triton",
                    triton_url=triton.grpc_url,
                    triton_model=model,
                    triton_timeout_s=30.0,
                    **common,
                    **overrides,
                )

            runs = {
                "embedded onnxruntime": Settings(backend="onnxruntime", **common),
                "triton gRPC": on_triton(triton_shared_memory="off"),
                "triton gRPC + shm": on_triton(triton_shared_memory="auto"),
                # The default above keeps 2 batches in flight (TritonBackend.BATCHES_IN_FLIGHT); one at a time
                # leaves Triton idle while a batch travels.
                "triton shm, 1 in flight": on_triton(triton_shared_memory="auto", max_batches_in_flight=1),
                "triton shm, 3 in flight": on_triton(triton_shared_memory="auto", max_batches_in_flight=3),
            }
            results = {}
            for name, settings in runs.items():
                results[name], shm = asyncio.run(measure(settings, images, requests))
                if name.endswith("shm") and not shm:
                    print("  (shared memory probe failed: tensors went over the wire)")
        finally:
            triton.stop()

    baseline = results["embedded onnxruntime"]
    print(f"\nimages/s (max batch {args.max_batch_size}, {len(images)} photos, Triton {model!r} on 127.0.0.1):")
    print(
        f"  {'backend':22s}"
        + "".join(f"{f'conc {c}':>12s}{'vs embedded':>13s}" for c in requests)
        + f"{'infer ms/img':>14s}{'vs embedded':>13s}"
    )
    for name, rates in results.items():
        cells = "".join(f"{rates[c]:12.2f}{rates[c] / baseline[c]:13.2f}" for c in requests)
        # Time per image: a ratio above 1 is slower; the images/s ratios above read the other way.
        cells += f"{rates['infer']:14.1f}{rates['infer'] / baseline['infer']:13.2f}"
        print(f"  {name:22s}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
