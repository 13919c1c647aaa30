#!/usr/bin/env python
"""Load test of the REST service: requests/s and p50/p99 latency at several concurrencies, with
micro-batching (max_batch_size 8) and without (max_batch_size 1), measured in the same run.

Starts ``facelocal serve`` itself on loopback for each setting (a subprocess, so the client does not share
the server's interpreter), posts 640x480 JPEGs cut from the shared photo, and prints a table. Bounded in
time: about ``2 x len(concurrency) x (seconds + 1)`` seconds plus server start-ups.

With ``--overload``, instead: one server with the default queue (``max_queue`` 64) under 200 clients posting
back to back, more than it admits, and how fast each answer came, by status: the 503s should be quick.

    python scripts/loadtest.py [--model-path artifacts/model.onnx] [--seconds 5] [--concurrency 1 8 32]
    python scripts/loadtest.py --overload [--concurrency 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facelocal.bench import make_jpeg  # noqa: E402
from tests.local.serve import ServeProcess, start_serve  # noqa: E402

PHOTO = ROOT.parent / "shared" / "data" / "images" / "selfie_group.jpg"


def ensure_model(path: Path | None) -> Path:
    """The given model, or a fresh export of the shared weights into a temporary directory."""
    if path is not None:
        if not path.is_file():
            sys.exit(f"{path} not found; export it with: facelocal export onnx --out {path}")
        return path
    from facelocal.config import DEFAULT_PRESET, get_config
    from facelocal.export import export_onnx
    from facelocal.models import load_pretrained

    weights = ROOT.parent / "shared" / "data" / "weights" / "mobilenet0.25_Final.pth"
    out = Path(tempfile.mkdtemp(prefix="facelocal-load-")) / "model.onnx"
    return export_onnx(load_pretrained(get_config(DEFAULT_PRESET), weights), out)


def start_server(
    model: Path,
    max_batch_size: int,
    max_queue: int = 256,
    extra: Sequence[str] = (),
    root: Path | None = None,
) -> ServeProcess:
    """``facelocal serve`` with these batching settings (and ``extra`` flags), from the checkout ``root`` (default:
    this one); its log on this terminal (warnings only)."""
    flags = (
        "--max-batch-size",
        str(max_batch_size),
        "--max-queue",
        str(max_queue),
    )
    return start_serve(model, *flags, *extra, "--log-level", "warning", stdout=None, stderr=None, root=root or ROOT)


def batching_metrics(url: str) -> dict[str, float]:
    """The server's inference count and the sum of its batch sizes so far."""
    text = httpx.get(url + "/metrics", timeout=10).text
    names = ("facelocal_inferences_total", "facelocal_batch_size_sum")
    return {name: float(re.search(rf"^{name} (\S+)$", text, re.M).group(1)) for name in names}


# The "status" of a request that got no HTTP answer (the connection failed).
NO_ANSWER = 0
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """The status and headers of the next answer on ``reader``; its body is read and dropped."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed without an answer")
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    await reader.readexactly(int(headers.get("content-length", 0)))
    return int(status_line.split()[1]), headers


async def post(connection: Connection | None, url: str, head: bytes, body: bytes, expect: bool):
    """One POST on a keep-alive ``connection`` (opened if ``None``): ``(status, connection to reuse or None)``.

    With ``expect``, the body is sent only after the server's ``100 Continue`` (as curl does for large bodies);
    a final answer instead ends the request unsent, and its connection with it. A bare client on asyncio
    streams rather than httpx: with 200 clients in one process, httpx's own work would dominate the latencies.
    """
    host, port = url.removeprefix("http://").split(":")
    reader, writer = connection or await asyncio.open_connection(host, int(port))
    writer.write(head if expect else head + body)
    status, headers = await read_answer(reader)
    if status == 100:
        writer.write(body)
        status, headers = await read_answer(reader)
    elif expect:
        headers["connection"] = "close"
    if headers.get("connection") == "close":
        writer.close()
        return status, None
    return status, (reader, writer)


async def load(url: str, body: bytes, concurrency: int, seconds: float, expect: bool = False) -> dict[int, list[float]]:
    """``concurrency`` clients posting back to back for ``seconds``: the latencies (s) of the answers, by status
    (``NO_ANSWER`` for transport errors); ``expect`` sends ``Expect: 100-continue``."""
    expect_header = "Expect: 100-continue\r\n" if expect else ""
    head = (
        f"POST /v1/detect HTTP/1.1\r\nHost: {url.removeprefix('http://')}\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {len(body)}\r\n{expect_header}\r\n"
    ).encode()
    latencies: dict[int, list[float]] = {}
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        connection = None
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                status, connection = await asyncio.wait_for(post(connection, url, head, body, expect), 60)
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                status, connection = NO_ANSWER, connection and connection[1].close()
            latencies.setdefault(status, []).append(time.perf_counter() - started)
        if connection:
            connection[1].close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies


def overload(model: Path, body: bytes, concurrency: int, seconds: float) -> None:
    """More clients than the default queue admits: how many answers of each status, and how fast; with the
    body sent at once, and sent only after ``100 Continue``."""
    server = start_server(model, max_batch_size=8, max_queue=64)
    try:
        asyncio.run(load(server.url, body, 2, 1.0))  # warm caches and connections
        runs = {expect: asyncio.run(load(server.url, body, concurrency, seconds, expect)) for expect in (False, True)}
    finally:
        server.stop()
    print(
        f"\nJPEG ({len(body)} bytes), POST /v1/detect, {concurrency} clients back to back for {seconds:.0f} s each, "
        "max_batch_size 8, max_queue 64"
    )
    print(f"{'client':>22} {'status':>9} {'answers':>8} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for expect, latencies in runs.items():
        for status, times in sorted(latencies.items()):
            ms = np.array(times) * 1000.0
            client = "Expect: 100-continue" if expect else "body at once"
            label = "no answer" if status == NO_ANSWER else status
            print(
                f"{client:>22} {label:>9} {len(ms):>8} {len(ms) / seconds:>8.1f} "
                f"{np.percentile(ms, 50):>8.1f} {np.percentile(ms, 99):>8.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", type=Path, help="exported ONNX model (default: export the shared weights)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement time per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", help="client counts (default 1 8 32; overload: 200)")
    parser.add_argument("--overload", action="store_true", help="answers by status under more load than is admitted")
    args = parser.parse_args()

    model = ensure_model(args.model_path)
    body = make_jpeg(PHOTO, 640, 480)
    if args.overload:
        for concurrency in args.concurrency or [200]:
            overload(model, body, concurrency, args.seconds)
        return
    args.concurrency = args.concurrency or [1, 8, 32]
    rows = []
    for label, batch_size in (("batching (max_batch_size 8)", 8), ("no batching (max_batch_size 1)", 1)):
        # A queue deep enough that even the highest concurrency is served, not refused.
        server = start_server(model, batch_size, max_queue=256)
        try:
            asyncio.run(load(server.url, body, 2, 1.0))  # warm caches and connections
            for concurrency in args.concurrency:
                before = batching_metrics(server.url)
                started = time.perf_counter()
                latencies = asyncio.run(load(server.url, body, concurrency, args.seconds))
                successes = latencies.pop(200, [])
                errors = sum(map(len, latencies.values()))
                elapsed = time.perf_counter() - started
                after = batching_metrics(server.url)
                batches = after["facelocal_inferences_total"] - before["facelocal_inferences_total"]
                images = after["facelocal_batch_size_sum"] - before["facelocal_batch_size_sum"]
                ms = np.array(successes) * 1000.0
                rows.append(
                    (
                        label,
                        concurrency,
                        len(successes),
                        errors,
                        len(successes) / elapsed,
                        np.percentile(ms, 50),
                        np.percentile(ms, 99),
                        images / max(batches, 1),
                    )
                )
        finally:
            server.stop()

    print(f"\nVGA JPEG (640x480, {len(body)} bytes), POST /v1/detect, {args.seconds:.0f} s per level")
    print(f"{'mode':32} {'conc':>4} {'reqs':>6} {'err':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean batch':>10}")
    for label, concurrency, count, errors, rps, p50, p99, mean_batch in rows:
        print(
            f"{label:32} {concurrency:>4} {count:>6} {errors:>4} {rps:>8.1f} {p50:>8.1f} {p99:>8.1f} "
            f"{mean_batch:>10.2f}"
        )
    by_key = {(row[0].startswith("batching"), row[1]): row[4] for row in rows}
    print("\nthroughput with batching / without, same run:")
    for concurrency in args.concurrency:
        print(f"  concurrency {concurrency:>3}: {by_key[(True, concurrency)] / by_key[(False, concurrency)]:.2f}x")


if __name__ == "__main__":
    main()
