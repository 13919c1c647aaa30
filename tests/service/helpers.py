"""Helpers for the service tests: an HTTP client with timeouts, content-type headers, encoded test images,
metric reading and a backend that can be held or broken (``facelocal serve`` subprocesses: tests.local.serve)."""

from __future__ import annotations

import asyncio
import io
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import httpx
import numpy as np
from PIL import Image

from facelocal.bench import make_jpeg
from service.errors import unavailable
from service.grpc.gen import facelocal_pb2_grpc as pb_grpc
from tests.paths import shared_file

# Every request in these tests is bounded: a hang fails the test instead of the suite.
TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def client(base_url: str, **kwargs) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=TIMEOUT, **kwargs)


@contextmanager
def grpc_stub(target: str) -> Iterator[pb_grpc.FaceDetectorStub]:
    """A FaceDetector stub on a fresh channel to ``target``, closed afterwards."""
    with grpc.insecure_channel(target) as channel:
        yield pb_grpc.FaceDetectorStub(channel)


def photo_bytes(name: str = "selfie_group.jpg") -> bytes:
    return shared_file("images", name).read_bytes()


def photo(name: str = "selfie_group.jpg") -> Image.Image:
    with Image.open(shared_file("images", name)) as image:
        return image.convert("RGB")


def encode(image: Image.Image, fmt: str, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


def vga_jpeg() -> bytes:
    """A 640x480 JPEG cut from the group photo (centre crop), as the load script posts."""
    return make_jpeg(shared_file("images", "selfie_group.jpg"), 640, 480)


def metric(text: str, name: str) -> float:
    """The value of an unlabelled sample ``name`` in Prometheus text."""
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"metric {name} not found"
    return float(match.group(1))


def boxes(result: dict) -> np.ndarray:
    return np.array([face["box"] for face in result["faces"]], dtype=np.float64).reshape(-1, 4)


def assert_same_faces(a: dict, b: dict, tolerance: float = 0.05) -> None:
    """Same image size and the same faces (boxes within ``tolerance`` px, scores within 1e-3)."""
    assert (a["width"], a["height"]) == (b["width"], b["height"])
    assert len(a["faces"]) == len(b["faces"])
    np.testing.assert_allclose(boxes(a), boxes(b), atol=tolerance)
    np.testing.assert_allclose([f["score"] for f in a["faces"]], [f["score"] for f in b["faces"]], atol=1e-3)


def service_detector(onnx_model_path, mesh_onnx_path, mesh_refine: int = 0):
    """The library's Detector on the service's model, runtime, canvas and thresholds, with FaceMesh refined
    ``mesh_refine`` times."""
    from facelocal.config import PostprocessConfig
    from facelocal.detector import Detector
    from facelocal.preprocess import ResizePolicy
    from service.settings import Settings

    settings = Settings()
    postprocess = PostprocessConfig(post_nms_top_k=max(PostprocessConfig.post_nms_top_k, settings.max_faces + 1))
    return Detector.from_onnx(
        onnx_model_path,
        runtime="onnxruntime",
        mesh_model_path=mesh_onnx_path,
        resize=ResizePolicy("fit", settings.canvas_size),
        postprocess=postprocess,
        mesh_refine=mesh_refine,
    )


def tiny_png(side: int = 8, grey: int = 128) -> bytes:
    """A uniform grey ``side x side`` PNG: nothing to find, all padding on the canvas."""
    return encode(Image.new("L", (side, side), grey), "PNG")


def open_upload(base_url: str, path: str, declared_length: int, first_bytes: bytes, content_type: str) -> socket.socket:
    """A raw HTTP/1.1 POST that announces ``declared_length`` body bytes but sends only ``first_bytes``: an
    upload that is still arriving (or stalled). Read the answer with :func:`read_response`."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {declared_length}\r\n\r\n"
    )
    sock.sendall(head.encode() + first_bytes)
    return sock


def read_response(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the one response on ``sock`` (raises ``TimeoutError`` if none comes)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, body


JPEG = {"content-type": "image/jpeg"}
PNG = {"content-type": "image/png"}


class GatedBackend:
    """A real backend whose inferences can be held at a gate, or made to fail.

    ``gated``: each inference waits until ``gate`` is set (gated from the start, the warm-up waits too) and sets
    ``entered`` when it arrives there. ``broken``: inferences fail with 503 ``backend_unavailable`` and the
    backend reports not ready. ``open()`` opens the gate from a test's thread. ``shapes`` records the shape of
    every batch inferred, warm-up included. Everything else is the inner backend's.
    """

    infer_here = None  # every inference goes through infer, where the gate is

    def __init__(self, inner, gated: bool = False) -> None:
        self._inner = inner
        self.gated = gated
        self.broken = False
        self.gate = asyncio.Event()
        self.entered = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.shapes: list[tuple[int, ...]] = []

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    async def infer(self, batch: np.ndarray):
        self.loop = asyncio.get_running_loop()
        self.shapes.append(batch.shape)
        if self.gated:
            self.entered.set()
            await self.gate.wait()
        if self.broken:
            raise unavailable("backend went away")
        return await self._inner.infer(batch)

    def open(self) -> None:
        """Let held and future inferences through (from any thread)."""
        if self.loop is None:
            self.gated = False
        else:
            self.loop.call_soon_threadsafe(self.gate.set)

    async def ready(self) -> bool:
        return not self.broken and await self._inner.ready()

    async def close(self) -> None:
        await self._inner.close()


class FixedCanvasBackend(GatedBackend):
    """A real backend declared to take only a 640x640 canvas, as Triton's model configs do: the service then
    letterboxes onto that square instead of fitting each image to a canvas of its own."""

    fixed_canvas = 640
