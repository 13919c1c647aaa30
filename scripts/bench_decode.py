#!/usr/bin/env python
"""Decoding large JPEGs for the service: in full (as before) against reduced to the canvas (as now).

For each size, the shared photo is enlarged and JPEG-encoded in memory; then, interleaved in every repeat so
that the ratio holds on a busy machine, it is decoded in full and at the smallest DCT scale that covers the
canvas, each followed by the letterbox onto the canvas (what the service's preparation step does).

    python scripts/bench_decode.py [--repeats 15] [--canvas 640] [--megapixels 12 24 36]
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facelocal.imageio import decode_image, decode_reduced
from facelocal.preprocess import ResizePolicy, to_canvas

PHOTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "selfie_group.jpg"


def make_jpeg(megapixels: float, quality: int = 90) -> tuple[bytes, int, int]:
    """The photo enlarged to about ``megapixels`` at 3:2, as a JPEG in memory."""
    width = round((megapixels * 1e6 * 1.5) ** 0.5)
    height = round(width / 1.5)
    buffer = io.BytesIO()
    Image.open(PHOTO).convert("RGB").resize((width, height), Image.BILINEAR).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue(), width, height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--canvas", type=int, default=640)
    parser.add_argument("--megapixels", type=float, nargs="+", default=[12, 24, 36])
    args = parser.parse_args()
    letterbox = ResizePolicy("letterbox", args.canvas)
    clock = time.perf_counter

    def full(data: bytes, width: int, height: int) -> tuple[float, float]:
        started = clock()
        rgb = decode_image(data)
        decoded = clock()
        to_canvas(rgb, letterbox.plan(width, height))
        return decoded - started, clock() - started

    def reduced(data: bytes, width: int, height: int) -> tuple[float, float]:
        started = clock()
        rgb = decode_reduced(data, cover=args.canvas).rgb
        decoded = clock()
        to_canvas(rgb, letterbox.plan(width, height))
        return decoded - started, clock() - started

    print(f"JPEG quality 90, canvas {args.canvas}, {args.repeats} interleaved repeats after one warm-up; median ms")
    print(
        f"{'image':>18} {'bytes':>10} | {'full decode':>11} {'reduced':>8} {'ratio':>6} | "
        f"{'full +canvas':>12} {'reduced +canvas':>15} {'ratio':>6}"
    )
    for megapixels in args.megapixels:
        data, width, height = make_jpeg(megapixels)
        samples = {path: [] for path in (full, reduced)}
        for path in samples:
            path(data, width, height)
        for _ in range(args.repeats):
            for path, times in samples.items():
                times.append(path(data, width, height))
        (full_decode, full_total), (reduced_decode, reduced_total) = (
            np.median(np.array(samples[path]) * 1000.0, axis=0) for path in (full, reduced)
        )
        print(
            f"{f'{width}x{height}':>18} {len(data):>10} | {full_decode:>11.1f} {reduced_decode:>8.1f} "
            f"{full_decode / reduced_decode:>5.1f}x | {full_total:>12.1f} {reduced_total:>15.1f} "
            f"{full_total / reduced_total:>5.1f}x"
        )


if __name__ == "__main__":
    main()
