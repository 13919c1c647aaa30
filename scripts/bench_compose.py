#!/usr/bin/env python
"""Throughput and latency of the deployments, in one run: the in-process service on the host (``facelocal serve``),
the embedded container (compose profile ``embedded``) and the API + Triton containers (profile ``cpu``), each
at concurrency 1 and 16, posting 640x480 JPEGs cut from the shared group photo to ``POST /v1/detect``.

Every deployment runs its defaults (batching included) on the same models (artifacts/, what the images hold).
Needs ``make images`` first. Bounded: about ``3 x len(concurrency) x (seconds + 1)`` seconds plus start-ups.

    python scripts/bench_compose.py [--seconds 10] [--concurrency 1 16]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facelocal.bench import make_jpeg  # noqa: E402
from scripts.loadtest import PHOTO, load  # noqa: E402
from tests.local import compose  # noqa: E402
from tests.local.serve import start_serve  # noqa: E402

MODEL = ROOT / "artifacts" / "model.onnx"
MESH_MODEL = ROOT / "artifacts" / "facemesh.onnx"


# One concurrency level: (answers, errors, requests/s, p50 ms, p99 ms).
Row = tuple[int, int, float, float, float]


def measure(url: str, body: bytes, concurrency: list[int], seconds: float) -> list[Row]:
    """Per concurrency: (answers, errors, requests/s, p50 ms, p99 ms)."""
    asyncio.run(load(url, body, 2, 2.0))  # warm caches, connections and the batcher
    rows = []
    for clients in concurrency:
        started = time.perf_counter()
        latencies = asyncio.run(load(url, body, clients, seconds))
        elapsed = time.perf_counter() - started
        ms = np.array(latencies.pop(200, [])) * 1000.0
        errors = sum(map(len, latencies.values()))
        rows.append((len(ms), errors, len(ms) / elapsed, float(np.percentile(ms, 50)), float(np.percentile(ms, 99))))
    return rows


def on_host(body: bytes, concurrency: list[int], seconds: float) -> dict[str, list[Row]]:
    server = start_serve(MODEL, "--mesh-model-path", str(MESH_MODEL), "--log-level", "warning")
    try:
        return {"loopback": measure(server.url, body, concurrency, seconds)}
    finally:
        server.stop()


def bridge_url(profile: str, service: str) -> str:
    """The API container's own address on compose's bridge network: reached from the host without docker-proxy,
    the userland process that relays the published ports."""
    (container,) = compose.compose("--profile", profile, "ps", "--quiet", service).split()
    template = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    address = subprocess.run(["docker", "inspect", "-f", template, container], capture_output=True, text=True)
    return f"http://{address.stdout.strip()}:8000"


def in_containers(profile: str, service: str) -> Callable[[bytes, list[int], float], dict[str, list[Row]]]:
    """Through the published port (what clients use), then on the bridge address (the cost of docker-proxy)."""

    def run(body: bytes, concurrency: list[int], seconds: float) -> dict[str, list[Row]]:
        compose.up(profile)
        try:
            return {
                "published port": measure(compose.HTTP_URL, body, concurrency, seconds),
                "bridge address": measure(bridge_url(profile, service), body, concurrency, seconds),
            }
        finally:
            compose.down(profile)

    return run


def cpu_model() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement time per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    for path in (MODEL, MESH_MODEL):
        if not path.is_file():
            sys.exit(f"{path} is missing: run `make images`")

    body = make_jpeg(PHOTO, 640, 480)
    deployments = {
        "in process (host)": on_host,
        "embedded container": in_containers("embedded", "api"),
        "API + Triton containers": in_containers("cpu", "api-cpu"),
    }
    results = {name: run(body, args.concurrency, args.seconds) for name, run in deployments.items()}

    baseline = results["in process (host)"]["loopback"]
    print(f"\n{cpu_model()}, {args.seconds:.0f} s per level, VGA JPEG ({len(body)} bytes), POST /v1/detect")
    print("| deployment | reached on | clients | req/s | p50 ms | p99 ms | errors | req/s vs in process |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for name, routes in results.items():
        for route, rows in routes.items():
            for clients, row, base in zip(args.concurrency, rows, baseline, strict=True):
                _, errors, rps, p50, p99 = row
                print(
                    f"| {name} | {route} | {clients} | {rps:.1f} | {p50:.1f} | {p99:.1f} | {errors} | "
                    f"{rps / base[2]:.2f} |"
                )


if __name__ == "__main__":
    main()
