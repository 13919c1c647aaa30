#!/usr/bin/env python
"""The HTTP service against the same work done in process: images/s of ``POST /v1/detect`` at a concurrency,
and of the same backend driven directly in this process, in the same run, on the same VGA JPEG.

Three modes, each with the service's settings (backend, precision, threads, max_batch_size) and
its canvas for the image (``fit`` to ``canvas_size``: 640x480 for VGA):

* ``raw backend``: the backend's ``infer`` alone on full batches of that canvas (no decode, no faces);
* ``in-process core``: :class:`service.core.DetectionCore` called directly at the same concurrency: decode,
  canvas, micro-batched inference and face selection, in the same threads as the service (its CPU pool and
  the backend's inference thread): the service minus HTTP, the fair baseline for what HTTP costs;
* ``service``: ``facelocal serve`` in a subprocess, posted to by a bare asyncio HTTP client.

They take turns for ``--rounds`` rounds of ``--seconds`` each, so that drift on a shared machine hits them
alike; the ratios use the medians over rounds. CPU ms per image: this process's CPU time for the in-process
modes, the server's (from /proc) and the load client's for the service.

    python scripts/bench_service.py [--backend openvino] [--precision auto] [--concurrency 16] [--rounds 3]

``--latency``: one request at a time, milliseconds per image from JPEG bytes to faces, interleaved in one run, at
VGA (640x480, ``max_size`` 640) and HD (1280x720, ``max_size`` 1920, so that every pixel runs), each with one
inference thread (``--threads 1``):

* ``library``: :class:`facelocal.detector.Detector` in this process on the same model and bytes (decode, canvas,
  forward, faces);
* ``yunet``: OpenCV's YuNet (:mod:`facelocal.peers`) on the full-size image, decode included;
* ``service``: ``POST /v1/detect`` over HTTP (keep-alive) to ``facelocal serve`` at its defaults, posted by a lean
  client (:class:`LeanClient`: a socket and the C parser uvicorn reads requests with) that parses the JSON;
* ``http.client``: the same requests by the standard library's client, whose Python header parsing adds about
  0.2 ms a request (the client's cost, not the service's; shown so that the two can be told apart);
* ``before`` (with ``--before DIR``): the same as ``service`` to a server run from the checkout ``DIR``
  (``git archive REV``), at that version's defaults.

    python scripts/bench_service.py --latency --threads 1 [--rounds 5] [--requests 20]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import select
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httptools
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from loadtest import PHOTO, ensure_model, load, start_server  # noqa: E402

from facelocal.bench import make_jpeg  # noqa: E402
from facelocal.detector import Detector  # noqa: E402
from facelocal.imageio import decode_image  # noqa: E402
from facelocal.peers import YUNET_MODEL, yunet_pipeline  # noqa: E402
from facelocal.preprocess import ResizePolicy, to_canvas  # noqa: E402
from service.backends import create_backend  # noqa: E402
from service.core import DetectionCore  # noqa: E402
from service.schemas import DetectOptions  # noqa: E402
from service.settings import Settings  # noqa: E402
from tests.local.serve import ServeProcess  # noqa: E402

MODES = ("raw backend", "in-process core", "service")


@dataclass
class Round:
    """One mode's result in one round."""

    images_per_s: float
    cpu_ms_per_image: float
    client_cpu_ms_per_image: float = 0.0


@dataclass
class Results:
    rounds: dict[str, list[Round]] = field(default_factory=lambda: {mode: [] for mode in MODES})
    errors: int = 0

    def median(self, mode: str, key: str = "images_per_s") -> float:
        return float(np.median([getattr(r, key) for r in self.rounds[mode]]))


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed(run, seconds: float) -> Round:
    """``run(deadline)`` returns the number of images it finished; their rate and this process's CPU cost."""
    cpu, started = time.process_time(), time.perf_counter()
    images = await run(started + seconds)
    elapsed = time.perf_counter() - started
    return Round(images / elapsed, (time.process_time() - cpu) * 1000.0 / max(images, 1))


async def raw_backend(backend, batch: np.ndarray, seconds: float) -> Round:
    async def run(deadline: float) -> int:
        images = 0
        while time.perf_counter() < deadline:
            await backend.infer(batch)
            images += len(batch)
        return images

    return await timed(run, seconds)


async def in_process_core(core: DetectionCore, jpeg: bytes, concurrency: int, seconds: float) -> Round:
    options = DetectOptions()

    async def run(deadline: float) -> int:
        async def client() -> int:
            done = 0
            while time.perf_counter() < deadline:
                await core.detect(jpeg, options)
                done += 1
            return done

        return sum(await asyncio.gather(*(client() for _ in range(concurrency))))

    return await timed(run, seconds)


async def service(server: ServeProcess, jpeg: bytes, concurrency: int, seconds: float, results: Results) -> Round:
    server_cpu = process_cpu_s(server.process.pid)
    answers: dict[int, list[float]] = {}

    async def run(deadline: float) -> int:
        answers.update(await load(server.url, jpeg, concurrency, deadline - time.perf_counter()))
        return len(answers.get(200, []))

    measured = await timed(run, seconds)
    results.errors += sum(len(v) for status, v in answers.items() if status != 200)
    images = max(len(answers.get(200, [])), 1)
    server_ms = (process_cpu_s(server.process.pid) - server_cpu) * 1000.0 / images
    return Round(measured.images_per_s, server_ms, client_cpu_ms_per_image=measured.cpu_ms_per_image)


async def bench(args: argparse.Namespace, settings: Settings, server: ServeProcess, jpeg: bytes) -> Results:
    backend = create_backend(settings)
    core = DetectionCore(settings, backend)
    await core.start()
    rgb = decode_image(jpeg)
    canvas = to_canvas(rgb, ResizePolicy("fit", core.canvas_size).plan(rgb.shape[1], rgb.shape[0]))
    batch = np.stack([canvas] * args.max_batch_size)
    results = Results()
    try:
        # Warm up every mode (OpenVINO compiles a model per batch shape it sees often).
        for _ in range(2):
            await raw_backend(backend, batch, 1.0)
            await in_process_core(core, jpeg, args.concurrency, 1.0)
            await load(server.url, jpeg, args.concurrency, 1.0)
        for _ in range(args.rounds):
            results.rounds["raw backend"].append(await raw_backend(backend, batch, args.seconds))
            results.rounds["in-process core"].append(await in_process_core(core, jpeg, args.concurrency, args.seconds))
            results.rounds["service"].append(await service(server, jpeg, args.concurrency, args.seconds, results))
    finally:
        await core.stop()
        await backend.close()
    return results


# Latency mode: (name, width, height, max_size).
SIZES = (("VGA", 640, 480, 640), ("HD", 1280, 720, 1920))
LATENCY_MODES = ("library", "yunet", "service", "http.client")


class LeanClient:
    """A blocking keep-alive HTTP/1.1 client for one server: a request is one ``sendall``, the answer is read by
    httptools' C parser. It costs the measurement little, as wrk or h2load would, where ``http.client`` parses
    the answer's head in Python (``email.parser``)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.socket = self._connect()

    def _connect(self) -> socket.socket:
        connection = socket.create_connection(self.address, timeout=30)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def post(self, target: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        """``POST target``: the status and the body of the answer."""
        if select.select([self.socket], [], [], 0)[0]:
            # An idle connection has nothing to read unless the server ended it (its 408 for a head that did not
            # come in time, then the close): open a new one, as http.client does.
            self.socket.close()
            self.socket = self._connect()
        host, port = self.address
        head = f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        self.socket.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        while not answer.complete:
            data = self.socket.recv(1 << 16)
            if not data:
                raise ConnectionError("the server closed the connection")
            parser.feed_data(data)
        return parser.get_status_code(), b"".join(answer.body)

    def close(self) -> None:
        self.socket.close()


class _Answer:
    """httptools' callbacks for one response: its body, and whether it is complete."""

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.complete = False

    def on_body(self, data: bytes) -> None:
        self.body.append(data)

    def on_message_complete(self) -> None:
        self.complete = True


class StandardClient:
    """:class:`LeanClient`'s interface over the standard library's ``http.client``."""

    def __init__(self, url: str) -> None:
        self.connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)

    def post(self, target: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        self.connection.request("POST", target, body, {"content-type": content_type})
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


def latency(args: argparse.Namespace, model: Path) -> None:
    """Milliseconds per image at concurrency 1: the library, YuNet and the service over HTTP, interleaved."""
    threads = args.threads or 1
    jpegs = {name: make_jpeg(PHOTO, width, height) for name, width, height, _ in SIZES}
    libraries = {
        name: Detector.from_onnx(
            model, threads=threads, runtime=args.backend, precision=args.precision, resize=ResizePolicy("fit", size)
        )
        for name, _, _, size in SIZES
    }
    yunet = yunet_pipeline(PHOTO.parents[1] / YUNET_MODEL, threads)  # beside the photo, in the shared data
    flags = ["--backend", args.backend, "--precision", args.precision, "--intra-op-threads", str(threads)]
    flags += ["--mesh-model-path", "none"]
    # A server per client: a lone request runs on the event loop only when its connection is the only one open.
    servers = {mode: start_server(model, args.max_batch_size, extra=flags) for mode in ("service", "http.client")}
    if args.before is not None:
        # The other checkout at its own defaults (its max_delay_ms of 5 included).
        servers["before"] = start_server(model, args.max_batch_size, extra=flags, root=args.before)
    clients: dict[str, LeanClient | StandardClient] = {
        "service": LeanClient(servers["service"].url),
        "http.client": StandardClient(servers["http.client"].url),
    }
    if args.before is not None:
        clients["before"] = LeanClient(servers["before"].url)
    modes = (*LATENCY_MODES, *(("before",) if args.before is not None else ()))

    def post(mode: str, jpeg: bytes, size: int) -> dict:
        status, body = clients[mode].post(f"/v1/detect?max_size={size}", jpeg, "image/jpeg")
        if status != 200:
            raise RuntimeError(f"{mode} answered {status}: {body[:200]!r}")
        return json.loads(body)

    def run(mode: str, name: str, size: int) -> int:
        jpeg = jpegs[name]
        if mode == "library":
            return len(libraries[name].detect([decode_image(jpeg)])[0])
        if mode == "yunet":
            return yunet(jpeg)[1]
        return len(post(mode, jpeg, size)["faces"])

    times: dict[tuple[str, str], list[float]] = {(name, mode): [] for name, *_ in SIZES for mode in modes}
    queues: dict[str, list[float]] = {name: [] for name, *_ in SIZES}
    faces: dict[tuple[str, str], int] = {}
    try:
        for name, _, _, size in SIZES:  # warm up: OpenVINO compiles a model for a shape it sees again
            for mode in modes:
                for _ in range(3):
                    run(mode, name, size)
        for _ in range(args.rounds):
            for name, _, _, size in SIZES:
                for mode in modes:
                    for _ in range(args.requests):
                        started = time.perf_counter()
                        faces[(name, mode)] = run(mode, name, size)
                        times[(name, mode)].append((time.perf_counter() - started) * 1000.0)
                queues[name].append(post("service", jpegs[name], size)["timings_ms"]["queue"])
    finally:
        for client in clients.values():
            client.close()
        for server in servers.values():
            server.stop()

    print(
        f"\nconcurrency 1, JPEG bytes to faces; backend {args.backend} (precision {args.precision}), {threads} "
        f"inference thread(s); {args.rounds} interleaved rounds of {args.requests} requests per mode and size"
    )
    print(f"{'size':5} {'mode':11} {'median ms':>9} {'p90 ms':>7} {'faces':>5}  {'/ library':>9} {'/ yunet':>7}")
    for name, *_ in SIZES:
        library = float(np.median(times[(name, "library")]))
        peer = float(np.median(times[(name, "yunet")]))
        for mode in modes:
            values = times[(name, mode)]
            median = float(np.median(values))
            print(
                f"{name:5} {mode:11} {median:>9.2f} {np.percentile(values, 90):>7.2f} {faces[(name, mode)]:>5}  "
                f"{median / library:>9.2f} {median / peer:>7.2f}"
            )
        print(f"{name:5} service timings_ms.queue, median of {len(queues[name])}: {np.median(queues[name]):.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", type=Path, help="exported model (default: export the shared weights)")
    parser.add_argument("--backend", default="openvino", choices=("onnxruntime", "openvino"))
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "int8"))
    parser.add_argument("--threads", type=int, default=0, help="inference threads (0: the runtime's choice)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement time per mode and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", action="store_true", help="concurrency 1: library, YuNet and service, in ms")
    parser.add_argument("--requests", type=int, default=20, help="--latency: requests per mode, size and round")
    parser.add_argument(
        "--before", type=Path, help="--latency: also a server run from this checkout (e.g. an earlier commit's)"
    )
    args = parser.parse_args()

    model = ensure_model(args.model_path)
    if args.latency:
        latency(args, model)
        return
    settings = Settings(
        model_path=model,
        backend=args.backend,
        precision=args.precision,
        intra_op_threads=args.threads,
        max_batch_size=args.max_batch_size,
        mesh_model_path=None,
    )
    jpeg = make_jpeg(PHOTO, 640, 480)
    extra = ["--backend", args.backend, "--precision", args.precision, "--intra-op-threads", str(args.threads)]
    extra += ["--mesh-model-path", "none"]
    server = start_server(model, args.max_batch_size, extra=extra)
    try:
        results = asyncio.run(bench(args, settings, server, jpeg))
    finally:
        server.stop()

    print(
        f"\nVGA JPEG 640x480; backend {args.backend} (precision {args.precision}), threads {args.threads or 'default'}"
        f", max_batch_size {args.max_batch_size}, concurrency {args.concurrency};"
        f" {args.rounds} rounds of {args.seconds:.0f} s; {results.errors} service errors"
    )
    print(f"{'mode':16} {'median img/s':>12} {'CPU ms/img':>10} {'client CPU':>10}   rounds img/s")
    for mode in MODES:
        rates = " ".join(f"{r.images_per_s:7.1f}" for r in results.rounds[mode])
        client = results.median(mode, "client_cpu_ms_per_image")
        print(
            f"{mode:16} {results.median(mode):>12.1f} {results.median(mode, 'cpu_ms_per_image'):>10.2f} "
            f"{client:>10.2f}   {rates}"
        )
    served = results.median("service")
    print(f"\nservice / in-process core: {served / results.median('in-process core'):.2f}  (goal >= 0.9)")
    print(f"service / raw backend:     {served / results.median('raw backend'):.2f}")


if __name__ == "__main__":
    main()
