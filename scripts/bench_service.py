#!/usr/bin/env python
"""The HTTP service against its own backend: images/s of ``POST /v1/detect`` at a concurrency, and of the same
backend driven directly in this process, in the same run, on the same VGA JPEG.

Two direct baselines, each with the service's settings (backend, precision, threads, max_batch_size, letterbox
canvas): ``raw backend``, the backend's ``infer`` alone on full batches of the canvas (the ceiling the issue's
85 % goal is measured against), and ``raw pipeline``, decode, letterbox, full-batch inference and face selection
one batch after another (what the service does, without HTTP, queueing or concurrency). The three take turns
for ``--rounds`` rounds of ``--seconds`` each, so that drift on a shared machine hits them alike; the ratios use
the medians over rounds.

    python scripts/bench_service.py [--backend openvino] [--precision auto] [--concurrency 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from loadtest import PHOTO, Server, ensure_model, load  # noqa: E402

from facelocal.bench import make_jpeg  # noqa: E402
from facelocal.config import SERVE_POSTPROCESS  # noqa: E402
from facelocal.imageio import decode_image  # noqa: E402
from facelocal.postprocess import select_faces  # noqa: E402
from facelocal.preprocess import ResizePolicy, to_canvas  # noqa: E402
from service.backends import create_backend  # noqa: E402
from service.settings import Settings  # noqa: E402


def raw_backend(backend, batch: np.ndarray, seconds: float) -> float:
    """Images/s of ``backend.infer`` on ``batch`` over back-to-back calls for ``seconds``."""

    async def run() -> float:
        images, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            await backend.infer(batch)
            images += len(batch)
        return images / (time.perf_counter() - started)

    return asyncio.run(run())


def raw_pipeline(backend, jpeg: bytes, policy: ResizePolicy, batch_size: int, seconds: float) -> float:
    """Images/s of decode, letterbox, one inference per ``batch_size`` images and face selection, in sequence."""

    async def run() -> float:
        images, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            rgbs = [decode_image(jpeg) for _ in range(batch_size)]
            placements = [policy.plan(rgb.shape[1], rgb.shape[0]) for rgb in rgbs]
            batch = np.stack([to_canvas(rgb, p) for rgb, p in zip(rgbs, placements, strict=True)])
            boxes, scores, landmarks = await backend.infer(batch)
            for row, (rgb, placement) in enumerate(zip(rgbs, placements, strict=True)):
                height, width = rgb.shape[:2]
                select_faces(boxes[row], scores[row], landmarks[row], placement, width, height, SERVE_POSTPROCESS)
            images += batch_size
        return images / (time.perf_counter() - started)

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", type=Path, help="exported model (default: export the shared weights)")
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "openvino"))
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "int8"))
    parser.add_argument("--threads", type=int, default=0, help="inference threads (0: the runtime's choice)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--max-delay-ms", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement time per mode and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    model = ensure_model(args.model_path)
    settings = Settings(
        model_path=model,
        backend=args.backend,
        precision=args.precision,
        intra_op_threads=args.threads,
        max_batch_size=args.max_batch_size,
    )
    backend = create_backend(settings)
    jpeg = make_jpeg(PHOTO, 640, 480)
    policy = ResizePolicy("letterbox", settings.canvas_size)
    rgb = decode_image(jpeg)
    tensor = to_canvas(rgb, policy.plan(rgb.shape[1], rgb.shape[0]))
    batch = np.stack([tensor] * args.max_batch_size)
    extra = ["--backend", args.backend, "--precision", args.precision, "--intra-op-threads", str(args.threads)]
    server = Server(model, args.max_batch_size, args.max_delay_ms, extra=extra)
    rates: dict[str, list[float]] = {"raw backend": [], "raw pipeline": [], "service": []}
    errors = 0
    try:
        raw_backend(backend, batch, 1.0)  # warm up both sides
        asyncio.run(load(server.url, jpeg, 2, 1.0))
        for _ in range(args.rounds):
            rates["raw backend"].append(raw_backend(backend, batch, args.seconds))
            rates["raw pipeline"].append(raw_pipeline(backend, jpeg, policy, args.max_batch_size, args.seconds))
            started = time.perf_counter()
            latencies, failed = asyncio.run(load(server.url, jpeg, args.concurrency, args.seconds))
            rates["service"].append(len(latencies) / (time.perf_counter() - started))
            errors += failed
    finally:
        server.stop()
        asyncio.run(backend.close())

    print(
        f"\nVGA JPEG 640x480 on a {settings.canvas_size} canvas; backend {args.backend} ({backend.precision}), "
        f"threads {args.threads or 'default'}, max_batch_size {args.max_batch_size}, service concurrency "
        f"{args.concurrency}; {args.rounds} rounds of {args.seconds:.0f} s; {errors} service errors"
    )
    print(f"{'mode':14} {'median img/s':>12} {'rounds':>24}")
    for mode, values in rates.items():
        print(f"{mode:14} {np.median(values):>12.1f} {' '.join(f'{v:7.1f}' for v in values):>24}")
    service = np.median(rates["service"])
    print(f"\nservice / raw backend:  {service / np.median(rates['raw backend']):.2f}  (goal >= 0.85)")
    print(f"service / raw pipeline: {service / np.median(rates['raw pipeline']):.2f}")


if __name__ == "__main__":
    main()
