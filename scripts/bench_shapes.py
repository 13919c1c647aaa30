#!/usr/bin/env python
"""What a new photo shape costs on OpenVINO: a fresh ``facelocal serve`` gets a stream of photos of mixed sizes,
one request at a time, each size coming round four times (round robin), and the answer's inference time and
round trip are reported by the time a shape comes round: the first request of a shape, the second, then warm.

OpenVINO's first run of a canvas shape costs several warm ones, and the service has a model compiled for a shape
it sees again (``facelocal.runtime.OpenVinoForward``). ``--before DIR`` runs the same stream against a fresh
server from the checkout ``DIR`` (e.g. ``git archive`` of an earlier commit) after this one's.

    python scripts/bench_shapes.py [--before /tmp/before] [--passes 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from loadtest import PHOTO, start_server  # noqa: E402

from facelocal.bench import make_jpeg  # noqa: E402

# Photo sizes: the common shapes (warmed at start-up) and a few that are not (a panorama, a tall crop, 5:4).
SIZES = (
    (1280, 720), (720, 1280), (1024, 768), (768, 1024), (1200, 800), (800, 1200), (1000, 1000),
    (1800, 500), (500, 1100), (1250, 1000),
)  # fmt: skip


def stream(url: str, passes: int) -> dict[int, list[tuple[float, float]]]:
    """(inference ms, round trip ms) of each request, by the time its size has come round (1, 2, ...)."""
    jpegs = [make_jpeg(PHOTO, width, height) for width, height in SIZES]
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=60)
    by_pass: dict[int, list[tuple[float, float]]] = {index: [] for index in range(1, passes + 1)}
    try:
        for index in range(1, passes + 1):
            for jpeg in jpegs:
                started = time.perf_counter()
                connection.request("POST", "/v1/detect", jpeg, {"content-type": "image/jpeg"})
                response = connection.getresponse()
                body = json.loads(response.read())
                round_trip = (time.perf_counter() - started) * 1000.0
                if response.status != 200:
                    raise RuntimeError(f"{response.status}: {body}")
                by_pass[index].append((body["timings_ms"]["inference"], round_trip))
    finally:
        connection.close()
    return by_pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", type=Path, default=ROOT / "artifacts" / "model.onnx")
    parser.add_argument("--before", type=Path, help="also a fresh server from this checkout, after this one's")
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="inference threads")
    args = parser.parse_args()

    flags = ["--backend", "openvino", "--intra-op-threads", str(args.threads), "--mesh-model-path", "none"]
    roots = {"after": None, **({"before": args.before} if args.before else {})}
    results = {}
    for name, root in roots.items():
        started = time.perf_counter()
        server = start_server(args.model_path, 8, extra=flags, root=root)
        ready_s = time.perf_counter() - started
        try:
            results[name] = (ready_s, stream(server.url, args.passes))
        finally:
            server.stop()
    print(
        f"\n{len(SIZES)} photo sizes, {args.passes} passes round robin, one request at a time, {args.threads} thread(s)"
    )
    header = f"{'server':7} {'start s':>7} {'request':>8} {'inference ms median':>20} {'max':>7}"
    print(f"{header} {'round trip median':>18} {'max':>7}")
    for name, (ready_s, by_pass) in results.items():
        groups = {
            "1st": by_pass[1],
            "2nd": by_pass[2],
            "warm": [t for i in range(3, args.passes + 1) for t in by_pass[i]],
        }
        for label, values in groups.items():
            inference, round_trip = np.array(values).T
            print(
                f"{name:7} {ready_s:>7.1f} {label:>8} {np.median(inference):>20.1f} {inference.max():>7.1f} "
                f"{np.median(round_trip):>18.1f} {round_trip.max():>7.1f}"
            )


if __name__ == "__main__":
    main()
