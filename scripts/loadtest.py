#!/usr/bin/env python
"""Load test of the REST service: requests/s and p50/p99 latency at several concurrencies, with
micro-batching (max_batch_size 8) and without (max_batch_size 1), measured in the same run.

Starts ``facelocal serve`` itself on loopback for each setting (a subprocess, so the client does not share
the server's interpreter), posts 640x480 JPEGs cut from the shared photo, and prints a table. Bounded in
time: about ``2 x len(concurrency) x (seconds + 1)`` seconds plus server start-ups.

    python scripts/loadtest.py [--model-path artifacts/model.onnx] [--seconds 5] [--concurrency 1 8 32]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT.parent / "shared" / "data" / "images" / "selfie_group.jpg"
SERVE = "import sys; from facelocal.cli import main; sys.exit(main())"


def vga_jpeg(path: Path) -> bytes:
    """A 640x480 JPEG: the photo scaled to cover 640x480 and centre-cropped."""
    image = Image.open(path).convert("RGB")
    scale = max(640 / image.width, 480 / image.height)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    left, top = (image.width - 640) // 2, (image.height - 480) // 2
    buffer = io.BytesIO()
    image.crop((left, top, left + 640, top + 480)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_model(path: Path | None) -> Path:
    """The given model, or a fresh export of the shared weights into a temporary directory."""
    if path is not None:
        if not path.is_file():
            sys.exit(f"{path} not found; export it with: facelocal export onnx --out {path}")
        return path
    from facelocal.config import DEFAULT_CONFIG, get_config
    from facelocal.export import export_onnx
    from facelocal.models import load_pretrained

    weights = ROOT.parent / "shared" / "data" / "weights" / "mobilenet0.25_Final.pth"
    out = Path(tempfile.mkdtemp(prefix="facelocal-load-")) / "model.onnx"
    return export_onnx(load_pretrained(get_config(DEFAULT_CONFIG), weights), out)


class Server:
    """``facelocal serve`` in a subprocess on loopback."""

    def __init__(self, model: Path, max_batch_size: int, max_delay_ms: float, extra: Sequence[str] = ()) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        command = [
            sys.executable, "-c", SERVE, "serve", "--host", "127.0.0.1", "--http-port", self.url.rsplit(":", 1)[1],
            "--grpc-port", str(free_port()), "--model-path", str(model), "--max-batch-size", str(max_batch_size),
            "--max-delay-ms", str(max_delay_ms), "--max-queue", "256", "--log-level", "warning", *extra,
        ]
        self.process = subprocess.Popen(command, cwd=ROOT)  # this checkout's code, not an installed copy
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit("the server exited during start-up")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        sys.exit("the server did not become ready in 60 s")

    def metrics(self) -> dict[str, float]:
        text = httpx.get(self.url + "/metrics", timeout=10).text
        names = ("facelocal_inferences_total", "facelocal_batch_size_sum")
        return {name: float(re.search(rf"^{name} (\S+)$", text, re.M).group(1)) for name in names}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def load(url: str, body: bytes, concurrency: int, seconds: float) -> tuple[list[float], int]:
    """``concurrency`` clients posting back to back for ``seconds``: latencies (s) of successes, error count."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:

        async def client() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await http.post("/v1/detect", content=body, headers={"content-type": "image/jpeg"})
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", type=Path, help="exported ONNX model (default: export the shared weights)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement time per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-delay-ms", type=float, default=5.0)
    args = parser.parse_args()

    model = ensure_model(args.model_path)
    body = vga_jpeg(PHOTO)
    rows = []
    for label, batch_size in (("batching (max_batch_size 8)", 8), ("no batching (max_batch_size 1)", 1)):
        server = Server(model, batch_size, args.max_delay_ms)
        try:
            asyncio.run(load(server.url, body, 2, 1.0))  # warm caches and connections
            for concurrency in args.concurrency:
                before = server.metrics()
                started = time.perf_counter()
                latencies, errors = asyncio.run(load(server.url, body, concurrency, args.seconds))
                elapsed = time.perf_counter() - started
                after = server.metrics()
                batches = after["facelocal_inferences_total"] - before["facelocal_inferences_total"]
                images = after["facelocal_batch_size_sum"] - before["facelocal_batch_size_sum"]
                ms = np.array(latencies) * 1000.0
                rows.append((label, concurrency, len(latencies), errors, len(latencies) / elapsed,
                             np.percentile(ms, 50), np.percentile(ms, 99), images / max(batches, 1)))
        finally:
            server.stop()

    print(f"\nVGA JPEG (640x480, {len(body)} bytes), POST /v1/detect, {args.seconds:.0f} s per level, "
          f"max_delay_ms {args.max_delay_ms}")
    print(f"{'mode':32} {'conc':>4} {'reqs':>6} {'err':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean batch':>10}")
    for label, concurrency, count, errors, rps, p50, p99, mean_batch in rows:
        print(f"{label:32} {concurrency:>4} {count:>6} {errors:>4} {rps:>8.1f} {p50:>8.1f} {p99:>8.1f} {mean_batch:>10.2f}")
    by_key = {(row[0].startswith("batching"), row[1]): row[4] for row in rows}
    print("\nthroughput with batching / without, same run:")
    for concurrency in args.concurrency:
        print(f"  concurrency {concurrency:>3}: {by_key[(True, concurrency)] / by_key[(False, concurrency)]:.2f}x")


if __name__ == "__main__":
    main()
