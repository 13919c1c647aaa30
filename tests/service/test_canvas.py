"""Canvas by size: each image runs on a canvas of its own size (long side at most the request's ``max_size``,
sides rounded up to 32), read back from the shapes the backend's ``infer`` was called with; ``max_size`` above
the server's limit is refused; a fixed-canvas model keeps its square."""

from __future__ import annotations

import base64

import grpc
import pytest

from service.grpc.gen import facelocal_pb2 as pb
from service.grpc.gen import facelocal_pb2_grpc as pb_grpc
from tests.service.helpers import JPEG, FixedCanvasBackend, GatedBackend, boxes, client, photo_bytes, vga_jpeg


@pytest.fixture(scope="module")
def recorded(start_service):
    """A service whose backend records every batch shape, and an HTTP client to it."""
    running = start_service(wrap_backend=GatedBackend, max_size_limit=1024)
    with client(running.http_url) as http:
        yield running, http


def canvas_of(running, http, image: bytes, **params) -> tuple[tuple[int, ...], dict]:
    """The ``(B, 3, H, W)`` shape the image's one inference ran at, and the response body."""
    before = len(running.backend.shapes)
    response = http.post("/v1/detect", content=image, headers=JPEG, params=params)
    assert response.status_code == 200, response.text
    (shape,) = running.backend.shapes[before:]
    return shape, response.json()


def test_a_vga_jpeg_runs_at_640x480(recorded) -> None:
    running, http = recorded
    shape, body = canvas_of(running, http, vga_jpeg())
    assert shape == (1, 3, 480, 640)
    assert (body["width"], body["height"]) == (640, 480) and body["faces"]


def test_max_size_keeps_more_pixels_and_finds_more_faces(recorded) -> None:
    running, http = recorded
    # selfie_group.jpg is 1024x624: 640x390 at the default max_size (canvas 640x416), whole at 1024 (1024x640).
    default_shape, default = canvas_of(running, http, photo_bytes())
    large_shape, large = canvas_of(running, http, photo_bytes(), max_size=1024)
    small_shape, _ = canvas_of(running, http, photo_bytes(), max_size=320)
    assert (default_shape, large_shape, small_shape) == ((1, 3, 416, 640), (1, 3, 640, 1024), (1, 3, 224, 320))
    # Boxes stay in original-image pixels whatever the canvas.
    assert (large["width"], large["height"]) == (default["width"], default["height"]) == (1024, 624)
    assert boxes(large)[:, 2].max() <= 1024 and boxes(large)[:, 3].max() <= 624
    assert len(large["faces"]) > len(default["faces"])


def test_a_small_image_is_never_upscaled(recorded) -> None:
    running, http = recorded
    from PIL import Image

    from tests.service.helpers import encode, photo

    image = encode(photo().resize((300, 200), Image.BILINEAR), "JPEG", quality=90)
    shape, _ = canvas_of(running, http, image, max_size=1024)
    assert shape == (1, 3, 224, 320)


def test_max_size_above_the_limit_is_422_on_rest_and_invalid_argument_on_grpc(recorded) -> None:
    running, http = recorded
    query = http.post("/v1/detect", content=photo_bytes(), headers=JPEG, params={"max_size": 1056})
    batch = http.post("/v1/detect/batch", files=[("images", photo_bytes())], params={"max_size": 1056})
    body = http.post("/v1/detect", json={"image": base64.b64encode(photo_bytes()).decode(), "max_size": 4096})
    for response in (query, batch, body):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "max_size_too_large"
        assert "1024" in response.json()["error"]["message"]
    too_small = http.post("/v1/detect", content=photo_bytes(), headers=JPEG, params={"max_size": 16})
    assert too_small.status_code == 422 and "max_size" in too_small.json()["error"]["message"]
    with grpc.insecure_channel(running.grpc_target) as channel:
        stub = pb_grpc.FaceDetectorStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Detect(pb.DetectRequest(image=photo_bytes(), options=pb.DetectOptions(max_size=2048)), timeout=30)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert dict(raised.value.trailing_metadata())["error-code"] == "max_size_too_large"
        before = len(running.backend.shapes)
        response = stub.Detect(pb.DetectRequest(image=photo_bytes(), options=pb.DetectOptions(max_size=1024)))
        assert running.backend.shapes[before:] == [(1, 3, 640, 1024)] and response.faces


def test_a_fixed_canvas_model_letterboxes_onto_its_square(start_service) -> None:
    running = start_service(wrap_backend=FixedCanvasBackend)
    with client(running.http_url) as http:
        shape, _ = canvas_of(running, http, vga_jpeg())
        assert shape == (1, 3, 640, 640)
        # Its canvas is also the limit of max_size, whatever max_size_limit says.
        refused = http.post("/v1/detect", content=vga_jpeg(), headers=JPEG, params={"max_size": 672})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "max_size_too_large"
        assert http.get("/v1/models").json()["models"][0]["canvas_size"] == 640
