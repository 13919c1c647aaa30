"""The service's limits and failure modes under hostile input and load, over real servers on loopback:
degenerate boxes, per-image failures in a batch, caps on faces, crops and batch size, the pixel budget,
refusing before the body is read, stalled uploads, shutdown, safe defaults and offline docs."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time

import grpc
import numpy as np
import pytest
from PIL import Image

from facelocal.postprocess import box_iou
from service.budget import Budget
from service.core import DetectionCore
from service.errors import ServiceError
from service.grpc.gen import facelocal_pb2 as pb
from service.grpc.gen import facelocal_pb2_grpc as pb_grpc
from service.grpc.server import CROP_BYTES, max_reply_bytes
from service.schemas import DetectOptions
from service.settings import Settings
from tests.service.helpers import (
    JPEG,
    PNG,
    GatedBackend,
    boxes,
    client,
    encode,
    open_upload,
    photo,
    photo_bytes,
    read_response,
    tiny_png,
    vga_jpeg,
)
from tests.service.test_batching import CountingBackend


def assert_boxes_inside(result: dict) -> None:
    """Every box spans at least one pixel each way and lies within the image."""
    for face in result["faces"]:
        x1, y1, x2, y2 = face["box"]
        assert 0 <= x1 and x2 - x1 >= 1 and x2 <= result["width"], face
        assert 0 <= y1 and y2 - y1 >= 1 and y2 <= result["height"], face


# --- degenerate boxes and per-image failures ---------------------------------------------------------------------


def test_flip_at_threshold_zero_on_a_tiny_image_answers_faces_inside_it(http, service) -> None:
    # Most candidates of an 8x8 image lie in the letterbox padding: clipped, they were zero-area boxes that
    # broke the box voting (HTTP 500, gRPC INTERNAL).
    params = {"tta": "flip", "score_threshold": 0}
    response = http.post("/v1/detect", content=tiny_png(), headers=PNG, params=params)
    assert response.status_code == 200, response.text
    assert_boxes_inside(response.json())
    plain = http.post("/v1/detect", content=tiny_png(), headers=PNG, params={"score_threshold": 0}).json()
    assert_boxes_inside(plain)
    with grpc.insecure_channel(service.grpc_target) as channel:
        answer = pb_grpc.FaceDetectorStub(channel).Detect(
            pb.DetectRequest(image=tiny_png(), options=pb.DetectOptions(tta="flip", score_threshold=0)), timeout=30
        )
    assert (answer.width, answer.height) == (8, 8)
    assert all(f.box.x2 - f.box.x1 >= 1 and f.box.y2 - f.box.y1 >= 1 for f in answer.faces)


def test_flip_at_a_very_low_threshold_on_a_small_face_photo(http) -> None:
    params = {"tta": "flip", "score_threshold": 0.001}
    response = http.post("/v1/detect", content=photo_bytes("single_face_small.jpg"), headers=JPEG, params=params)
    assert response.status_code == 200, response.text
    result = response.json()
    assert_boxes_inside(result)
    scores = [face["score"] for face in result["faces"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.9


def test_an_unexpected_failure_of_one_image_is_its_own_batch_entry(http, service, monkeypatch) -> None:
    from facelocal import pipeline

    real = pipeline.select_faces

    def fails_on_tiny_images(boxes, scores, landmarks, placement, width, height, config):
        if width == 8:
            raise RuntimeError("injected failure")
        return real(boxes, scores, landmarks, placement, width, height, config)

    monkeypatch.setattr(pipeline, "select_faces", fails_on_tiny_images)
    files = [("images", ("tiny.png", tiny_png(), "image/png")), ("images", ("group.jpg", photo_bytes(), "image/jpeg"))]
    response = http.post("/v1/detect/batch", files=files)
    assert response.status_code == 200, response.text
    broken, group = response.json()["results"]
    assert broken == {"error": {"code": "internal_error", "message": "internal server error"}}
    assert len(group["faces"]) > 20
    single = http.post("/v1/detect", content=tiny_png(), headers=PNG)
    assert single.status_code == 500 and single.json()["error"]["code"] == "internal_error"
    with grpc.insecure_channel(service.grpc_target) as channel:
        batch = pb_grpc.FaceDetectorStub(channel).DetectBatch(
            pb.DetectBatchRequest(images=[tiny_png(), photo_bytes()]), timeout=30
        )
    assert batch.items[0].error.code == "internal_error" and len(batch.items[1].result.faces) > 20


# --- caps on faces, crops and batch size -------------------------------------------------------------------------


def test_crops_at_threshold_zero_stop_at_max_crops(http, service) -> None:
    response = http.post(
        "/v1/detect", content=photo_bytes(), headers=JPEG, params={"score_threshold": 0, "return_crops": "true"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    cap = service.settings.max_crops
    assert len(result["faces"]) == cap and result["truncated"] is True
    assert all(face["crop"] for face in result["faces"])
    # Each crop is a base64 PNG of at most CROP_BYTES; the rest of a face is small.
    assert len(response.content) < cap * (CROP_BYTES * 4 // 3 + 1024)


def test_max_faces_defaults_to_the_cap_and_cannot_pass_it(http, service) -> None:
    cap = service.settings.max_faces
    for params in ({"score_threshold": 0}, {"score_threshold": 0, "max_faces": 10 * cap}):
        result = http.post("/v1/detect", content=photo_bytes(), headers=JPEG, params=params).json()
        assert len(result["faces"]) == cap and result["truncated"] is True
    three = http.post("/v1/detect", content=photo_bytes(), headers=JPEG, params={"max_faces": 3}).json()
    assert len(three["faces"]) == 3 and three["truncated"] is True
    everyone = http.post("/v1/detect", content=photo_bytes(), headers=JPEG).json()
    assert 20 < len(everyone["faces"]) < cap and everyone["truncated"] is False


def test_batch_over_max_batch_images_is_refused(http, service) -> None:
    count = service.settings.max_batch_images + 1
    response = http.post("/v1/detect/batch", json={"images": [base64.b64encode(tiny_png()).decode()] * count})
    assert response.status_code == 422 and response.json()["error"]["code"] == "too_many_images"
    with grpc.insecure_channel(service.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            pb_grpc.FaceDetectorStub(channel).DetectBatch(
                pb.DetectBatchRequest(images=[tiny_png()] * count), timeout=30
            )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(refused.value.trailing_metadata())["error-code"] == "too_many_images"


def test_the_largest_reply_the_caps_allow_fits_the_grpc_send_limit(start_service) -> None:
    # Crops of noise are the least compressible PNGs: the worst case of CROP_BYTES.
    noise = encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (400, 600, 3), np.uint8)), "PNG")
    running = start_service(max_batch_images=3, max_crops=4)
    options = pb.DetectOptions(score_threshold=0, nms_threshold=1, return_crops=True)
    limit = max_reply_bytes(running.settings)
    with grpc.insecure_channel(running.grpc_target, options=[("grpc.max_receive_message_length", limit)]) as channel:
        reply = pb_grpc.FaceDetectorStub(channel).DetectBatch(
            pb.DetectBatchRequest(images=[noise] * 3, options=options, request_id="r" * 256), timeout=60
        )
        with pytest.raises(grpc.RpcError) as long_id:
            pb_grpc.FaceDetectorStub(channel).Detect(pb.DetectRequest(image=noise, request_id="r" * 257), timeout=60)
    crops = [face.crop_png for item in reply.items for face in item.result.faces]
    assert len(crops) == 12 and max(len(crop) for crop in crops) <= CROP_BYTES
    assert reply.ByteSize() <= limit
    # The one part of a reply a client chooses is bounded too.
    assert long_id.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    running.stop()


# --- the pixel budget --------------------------------------------------------------------------------------------


class WatchedBackend(CountingBackend):
    """Counts the inferences that have started (and may be waiting at the gate)."""

    started = 0

    async def infer(self, batch: np.ndarray):
        self.started += 1
        return await super().infer(batch)


async def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_pixel_budget_holds_decoded_pixels_only_while_they_are_needed() -> None:
    vga = vga_jpeg()  # 640 x 480: decoded whole, with or without crops
    pixels = 640 * 480

    async def scenario() -> None:
        backend = WatchedBackend(no_faces=True)
        backend.gate.set()
        settings = Settings(max_queue=8, max_batch_size=1, max_pixels=pixels, max_pixels_in_flight=pixels + 1)
        core = DetectionCore(settings, backend)
        await core.start()
        backend.gate.clear()
        # Without crops the decoded pixels are given back once the canvas is made, so a second image fits...
        plain = asyncio.create_task(core.detect(vga, DetectOptions()))
        await wait_for(lambda: backend.started == 2)  # warm-up, then this image waiting at the gate
        with_crops = asyncio.create_task(core.detect(vga, DetectOptions(return_crops=True)))
        await wait_for(lambda: core.metrics.registry.get_sample_value("facelocal_queue_depth") == 1)
        # ... but an image kept for its crops holds them until it is answered: no room for a third.
        with pytest.raises(ServiceError) as full:
            await asyncio.wait_for(core.detect(vga, DetectOptions()), 30)
        assert (full.value.http_status, full.value.code) == (503, "queue_full")
        backend.gate.set()
        await asyncio.wait_for(asyncio.gather(plain, with_crops), 30)
        assert (await asyncio.wait_for(core.detect(vga, DetectOptions(return_crops=True)), 30)).width == 640
        await core.stop()

    asyncio.run(scenario())


def test_a_released_hold_takes_no_more_pixels() -> None:
    budget = Budget(100)
    first = budget.hold()
    first.take(60)
    with pytest.raises(ServiceError):
        budget.hold().take(50)
    first.release()
    # A decode still queued when its request was answered or cancelled must not leak pixels into the budget.
    with pytest.raises(ServiceError):
        first.take(10)
    budget.hold().take(100)


def test_reduced_decoding_finds_the_faces_a_full_decode_finds(http) -> None:
    big = encode(photo().resize((4096, 2496), Image.BILINEAR), "JPEG", quality=92)  # decoded at 1/4 for detection
    reduced = http.post("/v1/detect", content=big, headers=JPEG).json()
    # With crops the image is decoded whole, to cut them from its full resolution.
    full = http.post("/v1/detect", content=big, headers=JPEG, params={"return_crops": "true"}).json()
    assert (reduced["width"], reduced["height"]) == (full["width"], full["height"]) == (4096, 2496)
    assert len(reduced["faces"]) == len(full["faces"]) > 20
    # Measured: every face at IoU >= 0.986 with its full-decode twin.
    assert box_iou(boxes(reduced), boxes(full)).max(axis=1).min() > 0.95


# --- overload, stalled and interrupted uploads -------------------------------------------------------------------


def test_a_full_service_answers_503_before_reading_the_body(start_service) -> None:
    running = start_service(max_batch_size=1, max_queue=1, wrap_backend=GatedBackend)
    backend = running.backend
    backend.gated = True
    answers: list[int] = []
    posts = [threading.Thread(target=lambda: answers.append(_post_status(running.http_url))) for _ in range(2)]
    try:
        # One image held in inference, then one in the queue, in that order whatever the thread timing.
        posts[0].start()
        assert backend.entered.wait(30)
        posts[1].start()
        with client(running.http_url) as http:
            deadline = time.monotonic() + 30
            while "facelocal_queue_depth 1.0" not in http.get("/metrics").text:
                assert time.monotonic() < deadline, "the second image never reached the queue"
                time.sleep(0.01)
        # Both admitted images are in flight; this upload announces 5 MB and sends 100 bytes of them. Without
        # the early answer the server would wait for the rest of the body, which never comes.
        upload = open_upload(running.http_url, "/v1/detect", 5_000_000, photo_bytes()[:100], "image/jpeg")
        status, headers, body = read_response(upload, timeout=20)
        upload.close()
        assert status == 503 and json.loads(body)["error"]["code"] == "queue_full" and headers["retry-after"] == "1"
    finally:
        running._loop.call_soon_threadsafe(backend.gate.set)
        for post in posts:
            post.join(60)
        running.stop()
    assert answers == [200, 200]


def _post_status(url: str) -> int:
    with client(url) as http:
        return http.post("/v1/detect", content=photo_bytes(), headers=JPEG).status_code


def test_request_bodies_are_held_in_their_budget_until_answered(start_service) -> None:
    body = photo_bytes()
    running = start_service(max_body_bytes=len(body), max_body_bytes_in_flight=len(body) * 3 // 2)
    # One upload announces a full-size body and sends 100 bytes of it: it holds its announced bytes...
    stalled = open_upload(running.http_url, "/v1/detect", len(body), body[:100], "image/jpeg")
    try:
        time.sleep(0.2)
        with client(running.http_url) as http:
            # ... so a second full-size body does not fit, and is refused before it is read.
            refused = http.post("/v1/detect", content=body, headers=JPEG)
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "queue_full"
            assert refused.headers["retry-after"] == "1"
            # A chunked upload (no Content-Length) is counted as it arrives.
            chunked = http.post(
                "/v1/detect", content=iter([body[: len(body) // 2], body[len(body) // 2 :]]), headers=JPEG
            )
            assert chunked.status_code == 503 and chunked.json()["error"]["code"] == "queue_full"
            assert http.post("/v1/detect", content=body[:100], headers=JPEG).status_code == 400  # small ones fit
    finally:
        stalled.close()
    with client(running.http_url) as http:
        deadline = time.monotonic() + 30
        while (answer := http.post("/v1/detect", content=body, headers=JPEG)).status_code != 200:
            assert time.monotonic() < deadline, answer.text  # the closed upload gives its bytes back
            time.sleep(0.1)
    running.stop()


def test_a_stalled_upload_gets_408_and_the_connection_is_closed(start_service) -> None:
    running = start_service(body_timeout_s=1.0)
    started = time.monotonic()
    upload = open_upload(running.http_url, "/v1/detect", 100_000, photo_bytes()[:100], "image/jpeg")
    status, headers, body = read_response(upload, timeout=10)
    assert status == 408 and json.loads(body)["error"]["code"] == "body_timeout"
    assert headers["connection"] == "close" and upload.recv(1) == b""
    assert time.monotonic() - started < 8
    upload.close()
    running.stop()


def test_an_upload_still_arriving_at_shutdown_gets_json_503(start_service) -> None:
    running = start_service(shutdown_grace_s=6.0)
    upload = open_upload(running.http_url, "/v1/detect", 100_000, photo_bytes()[:100], "image/jpeg")
    time.sleep(0.2)  # the request is in the app, waiting for the rest of its body
    stopping = threading.Thread(target=running.stop)
    stopping.start()
    # Well within the grace period: the server does not wait for a body that may never come.
    status, headers, body = read_response(upload, timeout=4)
    assert status == 503 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "shutting_down"
    upload.close()
    stopping.join(30)


# --- safe defaults ------------------------------------------------------------------------------------------------


def test_defaults_listen_on_loopback_and_a_blank_key_is_no_key(monkeypatch) -> None:
    monkeypatch.delenv("FACELOCAL_HOST", raising=False)
    assert Settings().host == "127.0.0.1"
    for blank in ("", "  "):
        monkeypatch.setenv("FACELOCAL_API_KEY", blank)
        assert Settings().api_key is None


def test_a_blank_api_key_means_no_key_on_both_front_ends(start_service) -> None:
    running = start_service(api_key="")
    with client(running.http_url) as http:
        assert http.get("/v1/models").status_code == 200
        assert "securitySchemes" not in http.get("/openapi.json").json().get("components", {})
    with grpc.insecure_channel(running.grpc_target) as channel:
        assert len(pb_grpc.FaceDetectorStub(channel).ListModels(pb.ListModelsRequest(), timeout=30).models) == 1
    running.stop()


def test_openapi_declares_bearer_security_only_with_a_key(http) -> None:
    spec = http.get("/openapi.json").json()
    assert "securitySchemes" not in spec.get("components", {})
    assert not any("security" in op for path in spec["paths"].values() for op in path.values())


# --- OpenAPI and docs ---------------------------------------------------------------------------------------------


def test_openapi_advertises_only_what_this_server_accepts(http, service) -> None:
    spec = http.get("/openapi.json").json()
    detect, batch = spec["paths"]["/v1/detect"]["post"], spec["paths"]["/v1/detect/batch"]["post"]
    for operation in (detect, batch):
        query = {p["name"]: p["schema"] for p in operation["parameters"]}
        assert query["return_mesh"]["enum"] == [False] and query["return_pose"]["enum"] == [False]
        assert query["landmarks"]["enum"] == ["detector"]
        assert operation["requestBody"]["content"]["application/json"]["schema"]["properties"]["return_mesh"][
            "enum"
        ] == [False]
        assert "408" in operation["responses"]
    assert detect["requestBody"]["content"]["application/json"]["schema"]["properties"]["image"]["minLength"] == 1
    for content in ("multipart/form-data", "application/json"):
        images = batch["requestBody"]["content"][content]["schema"]["properties"]["images"]
        assert (images["minItems"], images["maxItems"]) == (1, service.settings.max_batch_images)
    assert "truncated" in spec["components"]["schemas"]["ImageResult"]["properties"]
    # What the document refuses, the server refuses.
    empty = http.post("/v1/detect", json={"image": ""})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "validation_error"
    mesh = http.post("/v1/detect", json={"image": base64.b64encode(tiny_png()).decode(), "return_mesh": True})
    assert mesh.status_code == 422 and mesh.json()["error"]["code"] == "mesh_unavailable"


def test_docs_page_and_its_assets_come_from_the_server(http) -> None:
    page = http.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert len(assets) >= 3 and all(url.startswith("/docs/static/") for url in assets), assets
    assert "://" not in page.text.replace(http.base_url.host, "")
    for url in assets:
        asset = http.get(url)
        assert asset.status_code == 200 and len(asset.content) > 500, url
    assert len(http.get("/docs/static/swagger-ui-bundle.js").content) > 500_000
    assert http.get("/redoc").status_code == 404
