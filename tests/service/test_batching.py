"""Micro-batching, back-pressure, readiness and graceful drain, through real servers where it matters."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

import numpy as np
import pytest

from service.batcher import MicroBatcher
from service.errors import ServiceError
from service.grpc.status import grpc_status
from service.metrics import ServiceMetrics
from tests.service.helpers import JPEG, GatedBackend, client, metric, photo_bytes, vga_jpeg


def _post_concurrently(url: str, bodies: list[bytes], params: dict | None = None) -> list:
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool, client(url) as http:
        return list(pool.map(lambda body: http.post("/v1/detect", content=body, headers=JPEG, params=params), bodies))


def test_concurrent_requests_share_inferences(start_service) -> None:
    # No delay: while one batch runs, the requests arriving meanwhile gather into the next.
    service = start_service(max_batch_size=8)
    with client(service.http_url) as http:
        before = http.get("/metrics").text
        responses = _post_concurrently(service.http_url, [vga_jpeg()] * 16)
        after = http.get("/metrics").text
    assert [r.status_code for r in responses] == [200] * 16
    first = responses[0].json()
    assert all(r.json()["faces"] == first["faces"] for r in responses)
    inferences = metric(after, "facelocal_inferences_total") - metric(before, "facelocal_inferences_total")
    images = metric(after, "facelocal_batch_size_sum") - metric(before, "facelocal_batch_size_sum")
    batches = metric(after, "facelocal_batch_size_count") - metric(before, "facelocal_batch_size_count")
    assert images == 16
    assert batches == inferences
    assert 2 <= inferences < 16, f"16 requests took {inferences} inferences"
    assert metric(after, "facelocal_queue_depth") == 0
    assert 'facelocal_requests_total{endpoint="/v1/detect",protocol="rest",status="200"} 16.0' in after
    assert "facelocal_request_latency_seconds_bucket" in after


def test_full_queue_answers_503_with_retry_after(start_service) -> None:
    service = start_service(max_batch_size=1, max_queue=1)
    responses = _post_concurrently(service.http_url, [photo_bytes()] * 24)
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 503}, statuses
    for response in responses:
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "queue_full"
            assert int(response.headers["retry-after"]) >= 1
    with client(service.http_url) as http:
        assert http.post("/v1/detect", content=photo_bytes(), headers=JPEG).status_code == 200


def test_readyz_follows_warm_up_and_backend_health(start_service) -> None:
    running = start_service(wait_ready=False, wrap_backend=lambda inner: GatedBackend(inner, gated=True))
    backend = running.backend
    try:
        with client(running.http_url) as http:
            assert http.get("/healthz").status_code == 200
            not_ready = http.get("/readyz")
            assert not_ready.status_code == 503 and not_ready.json()["error"]["code"] == "not_ready"
            early = http.post("/v1/detect", content=photo_bytes(), headers=JPEG)
            assert early.status_code == 503 and early.json()["error"]["code"] == "not_ready"
            assert http.get("/v1/models").json()["models"][0]["ready"] is False

            backend.open()
            for _ in range(200):
                if http.get("/readyz").status_code == 200:
                    break
                time.sleep(0.02)
            assert http.get("/readyz").json() == {"status": "ready"}
            assert http.post("/v1/detect", content=photo_bytes(), headers=JPEG).status_code == 200

            backend.broken = True
            down = http.post("/v1/detect", content=photo_bytes(), headers=JPEG)
            assert down.status_code == 503 and down.json()["error"]["code"] == "backend_unavailable"
            assert http.get("/readyz").status_code == 503
    finally:
        running.stop()


class CountingBackend:
    """Returns one detection per image whose score is the image's mean (or 0 with ``no_faces``), and
    records batch sizes."""

    name, model_name, has_dense, fixed_canvas, precision, batches_in_flight = "fake", "fake", False, None, None, 1
    infer_here = None  # every inference waits at the gate

    def __init__(self, no_faces: bool = False) -> None:
        self.batches: list[int] = []
        self.gate = asyncio.Event()
        self.no_faces = no_faces
        self.waiting = 0  # inferences started and held at the gate

    async def infer(self, batch: np.ndarray):
        self.waiting += 1
        await self.gate.wait()
        self.waiting -= 1
        self.batches.append(len(batch))
        count = len(batch)
        scores = np.zeros((count, 1), np.float32) if self.no_faces else batch.mean(axis=(1, 2, 3))[:, None]
        return np.zeros((count, 1, 4), np.float32), scores, np.zeros((count, 1, 10), np.float32)


def test_batcher_scatters_each_image_its_own_row_and_drains_on_stop() -> None:
    async def scenario() -> None:
        backend = CountingBackend()
        batcher = MicroBatcher(backend.infer, ServiceMetrics().detector, max_batch_size=4, max_queue=16)
        batcher.start()
        tasks = [asyncio.create_task(batcher.submit(np.full((3, 8, 8), i, np.float32))) for i in range(10)]
        await asyncio.sleep(0.01)
        stopping = asyncio.create_task(batcher.stop())
        await asyncio.sleep(0.01)
        with pytest.raises(ServiceError) as refused:
            await batcher.submit(np.zeros((3, 8, 8), np.float32))
        assert refused.value.http_status == 503
        backend.gate.set()
        outputs = await asyncio.gather(*tasks)
        await stopping
        assert [float(out.rows[1][0]) for out in outputs] == list(range(10))
        assert sum(backend.batches) == 10 and max(backend.batches) <= 4 and len(backend.batches) < 10

    asyncio.run(scenario())


def test_batcher_never_mixes_shapes_and_keeps_each_shapes_order() -> None:
    """Inputs of two canvas shapes arriving interleaved: each batch holds one shape, oldest first, and every
    caller gets its own rows of every output."""

    async def scenario() -> None:
        shapes: list[tuple[int, ...]] = []

        async def infer(batch: np.ndarray):
            shapes.append(batch.shape)
            return batch.mean(axis=(1, 2, 3)), batch[:, 0, 0, :2]

        batcher = MicroBatcher(infer, ServiceMetrics().detector, max_batch_size=3, max_queue=16)
        batcher.start()
        sizes = [(8, 8), (8, 16)] * 4
        tensors = [np.full((3, *size), i, np.float32) for i, size in enumerate(sizes)]
        outputs = await asyncio.gather(*(batcher.submit(tensor) for tensor in tensors))
        await batcher.stop()
        assert shapes == [(3, 3, 8, 8), (3, 3, 8, 16), (1, 3, 8, 8), (1, 3, 8, 16)]
        assert [float(out.rows[0]) for out in outputs] == list(range(8))
        assert all(out.rows[1].shape == (2,) and out.rows[1][0] == i for i, out in enumerate(outputs))
        assert [out.batch_size for out in outputs] == [3, 3, 3, 3, 3, 3, 1, 1]

    asyncio.run(scenario())


def test_stop_runs_what_is_queued_and_returns() -> None:
    async def scenario() -> None:
        backend = CountingBackend()
        backend.gate.set()
        batcher = MicroBatcher(backend.infer, ServiceMetrics().detector, max_batch_size=8, max_queue=8)
        batcher.start()
        waiting = asyncio.create_task(batcher.submit(np.ones((3, 8, 8), np.float32)))
        await asyncio.sleep(0.01)
        await asyncio.wait_for(batcher.stop(), 5)
        assert float((await waiting).rows[1][0]) == 1.0 and backend.batches == [1]

    asyncio.run(scenario())


def test_batcher_queue_is_bounded() -> None:
    async def scenario() -> None:
        backend = CountingBackend()
        batcher = MicroBatcher(backend.infer, ServiceMetrics().detector, max_batch_size=1, max_queue=2)
        batcher.start()
        first = asyncio.create_task(batcher.submit(np.zeros((3, 8, 8), np.float32)))
        await asyncio.sleep(0.01)  # the worker takes it and blocks in the backend
        queued = [asyncio.create_task(batcher.submit(np.zeros((3, 8, 8), np.float32))) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(ServiceError) as full:
            await batcher.submit(np.zeros((3, 8, 8), np.float32))
        assert (full.value.http_status, full.value.code, full.value.retry_after_s) == (503, "queue_full", 1)
        assert grpc_status(full.value).name == "RESOURCE_EXHAUSTED"
        backend.gate.set()
        await asyncio.gather(first, *queued)
        await batcher.stop()

    asyncio.run(scenario())


def test_core_refuses_work_beyond_queue_plus_batch_before_decoding() -> None:
    from service.core import DetectionCore
    from service.schemas import DetectOptions
    from service.settings import Settings

    async def scenario() -> None:
        backend = CountingBackend(no_faces=True)
        backend.gate.set()
        core = DetectionCore(Settings(max_queue=1, max_batch_size=1), backend)
        await core.start()
        backend.gate.clear()
        # One image held in inference, then one in the queue: the core is full whatever the thread timing.
        blocked = [asyncio.create_task(core.detect(vga_jpeg(), DetectOptions()))]
        while not backend.waiting:
            await asyncio.sleep(0.001)
        blocked.append(asyncio.create_task(core.detect(vga_jpeg(), DetectOptions())))
        await asyncio.sleep(0)
        # Garbage would be a 400 if it were decoded: queue_full proves it was refused first.
        with pytest.raises(ServiceError) as full:
            await core.detect(b"garbage", DetectOptions())
        assert full.value.code == "queue_full"
        backend.gate.set()
        results = await asyncio.gather(*blocked)
        assert [(r.width, r.height) for r in results] == [(640, 480)] * 2
        with pytest.raises(ServiceError) as bad:
            await core.detect(b"garbage", DetectOptions())
        assert bad.value.http_status == 400
        await core.stop()

    asyncio.run(scenario())


def test_a_lone_request_is_dispatched_without_waiting(start_service) -> None:
    """A request on an idle in-process backend goes at once (the old fixed batching delay cost every request 5 ms
    at low load). From the only connected client it is inferred on the event loop: no queue at all, still counted
    as a batch of one. With a second client connected (idle) it goes through the batcher, a thread hop away."""
    service = start_service()

    def queue_ms(http) -> list[float]:
        return [
            http.post("/v1/detect", content=vga_jpeg(), headers=JPEG).json()["timings_ms"]["queue"] for _ in range(5)
        ]

    with client(service.http_url) as http:
        before = http.get("/metrics").text
        alone = queue_ms(http)
        after = http.get("/metrics").text
        with client(service.http_url) as other:
            assert other.get("/healthz").status_code == 200  # a second keep-alive connection, open while idle
            accompanied = queue_ms(http)
    assert alone == [0.0] * 5
    assert metric(after, "facelocal_inferences_total") - metric(before, "facelocal_inferences_total") == 5
    assert metric(after, "facelocal_batch_size_sum") - metric(before, "facelocal_batch_size_sum") == 5
    assert all(ms > 0.0 for ms in accompanied) and float(np.median(accompanied)) < 5.0, accompanied


def test_run_here_infers_at_once_only_on_an_idle_batcher() -> None:
    """The core's lone request on an idle in-process backend: inferred on the calling thread as one batch and
    counted as one. Stopped, a batch running, two shapes, more than a batch or no blocking infer function (a
    remote backend): None, and the caller submits instead."""

    async def scenario() -> None:
        backend = CountingBackend()
        here_batches: list[tuple[int, ...]] = []

        def infer_here(batch: np.ndarray):
            here_batches.append(batch.shape)
            if batch.max() < 0:
                raise RuntimeError("the runtime failed")
            return (batch.mean(axis=(1, 2, 3)),)

        metrics = ServiceMetrics().detector
        batcher = MicroBatcher(backend.infer, metrics, max_batch_size=2, max_queue=8, infer_here=infer_here)
        canvas = np.zeros((3, 8, 8), np.float32)
        assert batcher.run_here([canvas]) is None
        batcher.start()
        outputs = batcher.run_here([np.full((3, 8, 8), 2, np.float32), np.full((3, 8, 8), 3, np.float32)])
        assert outputs is not None and [float(out.rows[0]) for out in outputs] == [2.0, 3.0]
        assert all(out.queue_ms == 0.0 and out.batch_size == 2 for out in outputs)
        assert metrics.inferences_total._value.get() == 1
        assert batcher.run_here([canvas, np.zeros((3, 8, 16), np.float32)]) is None
        assert batcher.run_here([canvas] * 3) is None
        with pytest.raises(ServiceError) as failed:
            batcher.run_here([np.full((3, 8, 8), -1, np.float32)])
        assert (failed.value.http_status, failed.value.code) == (503, "backend_unavailable")
        running = asyncio.create_task(batcher.submit(canvas))
        while not backend.waiting:
            await asyncio.sleep(0.001)
        assert batcher.run_here([canvas]) is None
        backend.gate.set()
        await running
        await batcher.stop()
        assert here_batches == [(2, 3, 8, 8), (1, 3, 8, 8)]
        assert batcher.runs_here
        remote = MicroBatcher(backend.infer, metrics, max_batch_size=2, max_queue=8)
        remote.start()
        assert not remote.runs_here and remote.run_here([canvas]) is None
        await remote.stop()

    asyncio.run(scenario())


def test_batches_go_as_soon_as_the_backend_has_room_and_arrivals_meanwhile_form_the_next() -> None:
    async def scenario() -> None:
        backend = CountingBackend()
        batcher = MicroBatcher(backend.infer, ServiceMetrics().detector, max_batch_size=8, max_queue=16)
        batcher.start()
        first = asyncio.create_task(batcher.submit(np.zeros((3, 8, 8), np.float32)))
        while not backend.waiting:  # dispatched alone, at once
            await asyncio.sleep(0.001)
        later = [asyncio.create_task(batcher.submit(np.full((3, 8, 8), i, np.float32))) for i in range(1, 6)]
        await asyncio.sleep(0.01)
        assert backend.waiting == 1, "a second batch ran while the backend was busy"
        backend.gate.set()
        outputs = await asyncio.gather(first, *later)
        await batcher.stop()
        assert backend.batches == [1, 5]
        assert [float(out.rows[1][0]) for out in outputs] == [0, 1, 2, 3, 4, 5]

    asyncio.run(scenario())


def test_two_shapes_interleaved_never_starve_each_other() -> None:
    """A steady stream of one shape cannot hold back another: batches follow the oldest waiting input."""

    async def scenario() -> None:
        order: list[int] = []
        release = asyncio.Event()

        async def infer(batch: np.ndarray):
            order.append(batch.shape[-1])
            await release.wait()
            release.clear()
            return (batch.mean(axis=(1, 2, 3)),)

        batcher = MicroBatcher(infer, ServiceMetrics().detector, max_batch_size=4, max_queue=64)
        batcher.start()
        tasks = [asyncio.create_task(batcher.submit(np.zeros((3, 8, 8), np.float32)))]
        await asyncio.sleep(0.01)
        # While the first 8-wide batch runs: one 16-wide input, then a flood of 8-wide ones.
        tasks.append(asyncio.create_task(batcher.submit(np.zeros((3, 8, 16), np.float32))))
        await asyncio.sleep(0)
        tasks += [asyncio.create_task(batcher.submit(np.zeros((3, 8, 8), np.float32))) for _ in range(12)]
        await asyncio.sleep(0)
        for _ in range(8):
            release.set()
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
        await batcher.stop()
        assert order[:2] == [8, 16], f"the 16-wide input waited behind later 8-wide ones: {order}"
        assert order == [8, 16, 8, 8, 8]

    asyncio.run(scenario())


@pytest.mark.parametrize("in_flight", [1, 3])
def test_batches_in_flight_follow_the_setting(in_flight: int) -> None:
    async def scenario() -> None:
        running, peak = 0, 0
        gate = asyncio.Event()

        async def infer(batch: np.ndarray):
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await gate.wait()
            running -= 1
            return (batch.mean(axis=(1, 2, 3)),)

        metrics = ServiceMetrics().detector
        batcher = MicroBatcher(infer, metrics, max_batch_size=2, max_queue=64, max_in_flight=in_flight)
        batcher.start()
        tasks = [asyncio.create_task(batcher.submit(np.full((3, 8, 8), i, np.float32))) for i in range(10)]
        await asyncio.sleep(0.02)
        assert running == in_flight and metrics.in_flight._value.get() == in_flight
        gate.set()
        outputs = await asyncio.gather(*tasks)
        await batcher.stop()
        assert peak == batcher.peak_in_flight == in_flight
        assert [float(out.rows[0]) for out in outputs] == list(range(10))

    asyncio.run(scenario())
