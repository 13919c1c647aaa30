"""Memory of ``facelocal serve`` under bursts of near-limit uploads, from the server process alone.

Starts ``facelocal serve`` on loopback, warms it up, and reports its resident memory (``/proc/<pid>/status``):
idle after warm-up, the peak of each burst (VmHWM, reset before the burst through ``/proc/<pid>/clear_refs``),
and idle after the bursts. A burst is 48 concurrent uploads of a 6000x6000 noise PNG just under the body limit,
or of a 36 MP camera-sized JPEG. Prints one JSON object; the README's memory table comes from it.

    .venv/bin/python -m scripts.memory_bursts --model artifacts/model.onnx [--rounds 3] [-- serve flags]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from service.settings import Settings
from tests.local.serve import start_serve
from tests.paths import shared_file

BURST = 48
# Warm-up sends every group size up to one full batch (the default max_batch_size), twice: the runtimes keep
# buffers (ONNX Runtime's arena) or compiled models (OpenVINO, from a shape's second sight) per batch shape, and
# those are caches a burst reuses, not memory it failed to give back.
WARM_UP = Settings.model_fields["max_batch_size"].default
NOISE_SIDE = 6000
CAMERA_SIZE = (7360, 4912)  # 36 MP, a full-frame camera's
# Full-size pixels of each kind of upload.
PIXELS = {"png": NOISE_SIDE**2, "jpeg": CAMERA_SIZE[0] * CAMERA_SIZE[1]}
# Uploads sit just under the body limit.
BODY_LIMIT = Settings.model_fields["max_body_bytes"].default
# How long the process may take to settle after a burst before idle memory is read.
SETTLE_S = 3.0


def noise_png(cache: Path) -> bytes:
    """A 6000x6000 RGB PNG of black-and-white noise just under the body limit (noise rows, then black ones)."""
    if cache.is_file():
        return cache.read_bytes()
    rng = np.random.default_rng(0)
    # One bit of entropy a channel: about 21.5 MiB for the whole image, so 90 % of the rows are noise.
    noise_rows = int(NOISE_SIDE * 0.9)
    pixels = np.zeros((NOISE_SIDE, NOISE_SIDE, 3), np.uint8)
    pixels[:noise_rows] = rng.integers(0, 2, (noise_rows, NOISE_SIDE, 3), dtype=np.uint8) * 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    data = buffer.getvalue()
    if not BODY_LIMIT * 0.85 < len(data) <= BODY_LIMIT:
        raise SystemExit(f"noise PNG is {len(data)} bytes; aim just under {BODY_LIMIT}")
    cache.write_bytes(data)
    return data


def camera_jpeg() -> bytes:
    """The shared group selfie resized to 7360x4912 (36 MP), quality 90."""
    with Image.open(shared_file("images", "selfie_group.jpg")) as image:
        large = image.convert("RGB").resize(CAMERA_SIZE, Image.BILINEAR)
    buffer = io.BytesIO()
    large.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(value.split()[0])
    return values


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def burst(url: str, body: bytes, content_type: str, uploads: int = BURST) -> Counter:
    """``uploads`` uploads of ``body`` at once; how many got each (status, error code)."""

    def post(_: int) -> tuple[int, str]:
        with httpx.Client(base_url=url, timeout=httpx.Timeout(300.0, connect=10.0)) as http:
            response = http.post("/v1/detect", content=body, headers={"content-type": content_type})
        return response.status_code, "" if response.status_code == 200 else response.json()["error"]["code"]

    with concurrent.futures.ThreadPoolExecutor(uploads) as pool:
        return Counter(pool.map(post, range(uploads)))


def measure(model: Path, rounds: int, noise_cache: Path, serve_flags: tuple[str, ...] = ()) -> dict:
    """Serve ``model``, warm up, then ``rounds`` bursts of each kind; the figures (MiB) and every burst's answers."""
    uploads = {"png": (noise_png(noise_cache), "image/png"), "jpeg": (camera_jpeg(), "image/jpeg")}
    server = start_serve(model, "--log-level", "warning", *serve_flags)
    pid = server.process.pid
    report: dict = {"sizes": {kind: len(body) for kind, (body, _) in uploads.items()}, "bursts": []}
    try:
        for _ in range(2):
            for group in range(1, WARM_UP + 1):
                for body, content_type in uploads.values():
                    burst(server.url, body, content_type, group)
        time.sleep(SETTLE_S)
        report["idle_after_warm_up_mib"] = rss_kib(pid)["VmRSS"] / 1024
        for round_ in range(rounds):
            for kind, (body, content_type) in uploads.items():
                reset_peak(pid)
                started = time.monotonic()
                answers = burst(server.url, body, content_type)
                report["bursts"].append(
                    {
                        "round": round_ + 1,
                        "kind": kind,
                        "peak_mib": rss_kib(pid)["VmHWM"] / 1024,
                        "seconds": round(time.monotonic() - started, 1),
                        "answers": {f"{status} {code}".strip(): n for (status, code), n in answers.items()},
                    }
                )
                print(json.dumps(report["bursts"][-1]), flush=True)
        time.sleep(SETTLE_S)
        report["idle_after_bursts_mib"] = rss_kib(pid)["VmRSS"] / 1024
    finally:
        server.stop(120)
    report["peak_mib"] = max(b["peak_mib"] for b in report["bursts"])
    report["idle_ratio"] = round(report["idle_after_bursts_mib"] / report["idle_after_warm_up_mib"], 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("artifacts/model.onnx"))
    parser.add_argument("--rounds", type=int, default=3, help="bursts of each kind")
    parser.add_argument("--noise-cache", type=Path, default=Path("/tmp/facelocal-noise-6000.png"))
    parser.add_argument("serve_flags", nargs="*", help="extra flags for facelocal serve (after --)")
    args = parser.parse_args()
    print(json.dumps(measure(args.model, args.rounds, args.noise_cache, tuple(args.serve_flags)), indent=1))


if __name__ == "__main__":
    main()
