"""Memory of ``facelocal serve`` under bursts of near-limit images, measured from the server process alone.

48 concurrent uploads of a 6300x6300 PNG (39.7 MP, just under ``max_pixels``) took the process to 6.3 GB, and
24 of a 36 MP JPEG to 3.2 GB, when every image was decoded in full and kept until its answer. With reduced
decoding and the pixel budget, the peak (VmHWM, which includes start-up) stays under 1.5 GB.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest
from PIL import Image

from scripts.local.serve import start_serve
from tests.service.helpers import client, encode, photo

PEAK_LIMIT_BYTES = 1.5e9
BURST = 48


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size (VmHWM in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def burst(url: str, body: bytes, content_type: str) -> list[tuple[int, str | None]]:
    """``BURST`` uploads of ``body`` at once; each answer's status and error code."""

    def post(_: int) -> tuple[int, str | None]:
        with client(url) as http:
            response = http.post("/v1/detect", content=body, headers={"content-type": content_type})
        return response.status_code, None if response.status_code == 200 else response.json()["error"]["code"]

    with concurrent.futures.ThreadPoolExecutor(BURST) as pool:
        return list(pool.map(post, range(BURST)))


@pytest.mark.slow
def test_bursts_of_near_limit_images_stay_under_1_5_gb(onnx_model_path) -> None:
    black_png = encode(Image.new("RGB", (6300, 6300)), "PNG")
    jpeg_36mp = encode(photo().resize((7360, 4912), Image.BILINEAR), "JPEG", quality=80)
    assert len(black_png) < 200_000 and 6300 * 6300 < 40_000_000
    server = start_serve(onnx_model_path, "--log-level", "warning")
    try:
        answers = burst(server.url, black_png, "image/png") + burst(server.url, jpeg_36mp, "image/jpeg")
        peak = peak_rss_bytes(server.process.pid)
    finally:
        server.stop(60)
    # Every upload is answered: with its faces, or refused as over capacity, nothing else.
    assert set(answers) <= {(200, None), (503, "queue_full")}, set(answers)
    served = sum(status == 200 for status, _ in answers)
    print(f"peak RSS {peak / 1e6:.0f} MB; {served} of {len(answers)} uploads answered 200")
    assert served >= BURST, "most of the burst is served, not refused"
    assert peak < PEAK_LIMIT_BYTES, f"peak RSS {peak / 1e6:.0f} MB"
