"""The service's Triton backend against a real tritonserver on loopback.

Parity with the embedded ONNX Runtime backend through the full REST service, shared memory and wire
tensors giving identical arrays, Triton's dynamic batcher merging concurrent requests (read from its
statistics API), and fast 503s while Triton is down followed by recovery without a service restart.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from facelocal.contract import INPUT_NAME
from service.backends.triton import TritonBackend
from service.errors import ServiceError
from service.grpc.status import grpc_status
from service.settings import Settings
from tests.local.tritonserver import TritonServer
from tests.service.helpers import FixedCanvasBackend, assert_same_faces, client, photo_bytes

PHOTOS = ("selfie_group.jpg", "wider_train_band_crowd.jpg")


def detect(http, name: str):
    return http.post("/v1/detect", content=photo_bytes(name), headers={"content-type": "image/jpeg"})


def test_triton_service_finds_the_embedded_faces(start_service, triton: TritonServer):
    remote = start_service(backend="triton", triton_url=triton.grpc_url)
    # Triton's model takes a fixed 640x640 canvas, so the embedded reference letterboxes onto the same square.
    embedded = start_service(wrap_backend=FixedCanvasBackend)
    with client(embedded.http_url) as embedded_http, client(remote.http_url) as triton_http:
        models = triton_http.get("/v1/models").json()["models"]
        assert [(m["name"], m["backend"]) for m in models] == [("mobilenet0.25", "triton")], (
            "no mesh model was asked for"
        )
        for name in PHOTOS:
            embedded, served = detect(embedded_http, name), detect(triton_http, name)
            assert embedded.status_code == served.status_code == 200, served.text
            assert len(served.json()["faces"]) >= 5, f"{name}: the photo shows faces"
            assert_same_faces(embedded.json(), served.json())


def onnx_outputs(onnx_path, batch: np.ndarray) -> list[np.ndarray]:
    """The graph's outputs for ``batch`` from onnxruntime in this process."""
    import onnxruntime as ort

    return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {INPUT_NAME: batch})


def assert_identical(outputs, expected) -> None:
    for got, want in zip(outputs, expected, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_shared_memory_and_wire_give_identical_arrays(
    triton: TritonServer, compact_onnx_path, photo_canvases, protocol
):
    batch = photo_canvases  # (2, 3, S, S) uint8
    expected = onnx_outputs(compact_onnx_path, batch)
    url = triton.grpc_url if protocol == "grpc" else triton.http_url

    async def run(shared_memory: str):
        backend = TritonBackend(
            Settings(backend="triton", triton_url=url, triton_protocol=protocol, triton_shared_memory=shared_memory)
        )
        try:
            outputs = await backend.infer(batch)
            return outputs, backend.uses_shared_memory
        finally:
            await backend.close()

    for mode, uses_shared_memory in (("auto", True), ("off", False)):
        outputs, used = asyncio.run(run(mode))
        assert used is uses_shared_memory, f"{mode}: loopback Triton on this host should pass the shm probe"
        assert_identical(outputs, expected)


def test_shared_memory_is_refused_for_a_remote_looking_url():
    from service.backends.triton_shm import resolves_to_loopback

    assert resolves_to_loopback("127.0.0.1:8001") and resolves_to_loopback("localhost:8001")
    assert not resolves_to_loopback("192.0.2.10:8001")  # TEST-NET-1: never loopback, never contacted


def test_concurrent_requests_are_batched_by_triton(triton: TritonServer, photo_canvases):
    import tritonclient.grpc as grpcclient

    image = photo_canvases[:1]
    stats_client = grpcclient.InferenceServerClient(triton.grpc_url)

    def counts() -> tuple[int, int]:
        (stats,) = stats_client.get_inference_statistics("retinaface").model_stats
        return stats.inference_count, stats.execution_count

    async def burst(requests: int):
        # 16 images through the Python-backend stub take seconds on a busy 2-core machine: this test is about
        # batching, so the per-call timeout (2 s by default) is not what it measures.
        settings = Settings(
            backend="triton", triton_url=triton.grpc_url, triton_shared_memory="off", triton_timeout_s=60.0
        )
        backend = TritonBackend(settings)
        try:
            return await asyncio.gather(*(backend.infer(image) for _ in range(requests)))
        finally:
            await backend.close()

    before = counts()
    results = asyncio.run(burst(16))
    inferences, executions = (after - start for after, start in zip(counts(), before, strict=True))
    stats_client.close()
    assert inferences == 16
    assert executions < inferences, f"16 single-image requests ran as {executions} executions: no batching"
    for _, scores, _ in results[1:]:
        np.testing.assert_array_equal(scores, results[0][1])


def test_triton_down_gives_fast_503_then_recovers_without_restart(start_service, disposable_triton: TritonServer):
    timeout_s = 2.0
    remote = start_service(backend="triton", triton_url=disposable_triton.grpc_url, triton_timeout_s=timeout_s)
    with client(remote.http_url) as http:
        assert detect(http, "selfie_group.jpg").status_code == 200
        disposable_triton.kill()
        for _ in range(3):
            started = time.monotonic()
            response = detect(http, "selfie_group.jpg")
            elapsed = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "backend_unavailable"
            # Failing fast is the behaviour under test: a hang would take the client's 30 s timeout.
            assert elapsed < 3 * timeout_s
        assert http.get("/readyz").status_code == 503, "not ready while Triton is down"

        disposable_triton.start()  # same ports, the service is untouched
        deadline = time.monotonic() + 10 * timeout_s
        while http.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert http.get("/readyz").status_code == 200
        assert detect(http, "selfie_group.jpg").status_code == 200


def test_backend_error_is_a_service_error_with_unavailable_code(disposable_triton: TritonServer):
    backend = TritonBackend(Settings(backend="triton", triton_url=disposable_triton.grpc_url))
    disposable_triton.kill()

    async def run():
        try:
            assert await backend.ready() is False
            with pytest.raises(ServiceError) as caught:
                await backend.infer(np.zeros((1, 3, 640, 640), np.float32))
            return caught.value
        finally:
            await backend.close()

    error = asyncio.run(run())
    assert (error.http_status, error.code, grpc_status(error).name) == (503, "backend_unavailable", "UNAVAILABLE")


def test_abandoned_shared_memory_requests_leave_the_backend_correct(
    triton: TritonServer, compact_onnx_path, photo_canvases
):
    """A request cancelled mid-flight (client gone, deadline) retires its region: the request queued behind it goes
    over the wire, the next one gets a fresh region, and both are exact."""
    batch = photo_canvases  # (2, 3, S, S) uint8
    flipped = np.ascontiguousarray(batch[::-1])

    async def run():
        backend = TritonBackend(Settings(backend="triton", triton_url=triton.grpc_url))
        try:
            await backend.infer(batch[:1])
            assert backend.uses_shared_memory
            abandoned = asyncio.create_task(backend.infer(batch))
            waiting = asyncio.create_task(backend.infer(batch))
            await asyncio.sleep(0.02)
            abandoned.cancel()
            await asyncio.gather(abandoned, return_exceptions=True)
            return await waiting, await backend.infer(flipped), backend.uses_shared_memory
        finally:
            await backend.close()

    waited, after, still_shared = asyncio.run(run())
    assert still_shared, "a fresh region replaces the abandoned one"
    assert_identical(waited, onnx_outputs(compact_onnx_path, batch))
    assert_identical(after, onnx_outputs(compact_onnx_path, flipped))


@pytest.mark.parametrize("in_flight", [1, 2])
def test_the_core_keeps_as_many_batches_in_flight_on_triton_as_allowed(triton: TritonServer, in_flight: int):
    """Each batch in flight has its own shared-memory slot, so the faces stay exact at any setting."""
    from service.core import DetectionCore
    from service.schemas import DetectOptions

    async def run():
        settings = Settings(
            backend="triton",
            triton_url=triton.grpc_url,
            max_batch_size=2,
            max_batches_in_flight=in_flight,
            triton_timeout_s=60.0,
        )
        backend = TritonBackend(settings)
        core = DetectionCore(settings, backend)
        await core.start()
        try:
            results = await asyncio.gather(*(core.detect(photo_bytes(), DetectOptions()) for _ in range(12)))
            return results, core.batcher.peak_in_flight, backend.uses_shared_memory
        finally:
            await core.stop()
            await backend.close()

    results, peak, shared = asyncio.run(run())
    assert shared
    assert peak == in_flight
    assert len(results[0].faces) >= 5
    for result in results[1:]:
        np.testing.assert_array_equal(result.faces.boxes, results[0].faces.boxes)
        np.testing.assert_array_equal(result.faces.landmarks, results[0].faces.landmarks)
