"""gRPC front end against the full service (REST and gRPC, as ``facelocal serve`` runs them) and real channels on
loopback; the tests are ordinary synchronous gRPC clients, as a separate process would be.
"""

from __future__ import annotations

import base64
import io
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from service.grpc.gen import facelocal_pb2 as pb
from service.grpc.gen import facelocal_pb2_grpc as pb_grpc
from tests.conftest import RunningService
from tests.paths import shared_file
from tests.service.helpers import GatedBackend

SERVICE = "facelocal.v1.FaceDetector"
TIMEOUT_S = 60


@dataclass
class Connected:
    """A running service and a gRPC channel to it."""

    service: RunningService
    channel: grpc.Channel

    @property
    def stub(self) -> pb_grpc.FaceDetectorStub:
        return pb_grpc.FaceDetectorStub(self.channel)


@pytest.fixture
def connect() -> Iterator:
    """``connect(running)``: a channel to ``running``'s gRPC port, closed and the service stopped after the test."""
    opened: list[Connected] = []

    def open_(running: RunningService) -> Connected:
        channel = grpc.insecure_channel(running.grpc_target)
        grpc.channel_ready_future(channel).result(TIMEOUT_S)
        opened.append(Connected(running, channel))
        return opened[-1]

    yield open_
    for connected in opened:
        connected.channel.close()
        connected.service.stop()


@pytest.fixture(scope="session")
def images() -> dict[str, bytes]:
    return {
        name: shared_file("images", name).read_bytes() for name in ("selfie_group.jpg", "wider_train_band_crowd.jpg")
    }


@pytest.fixture(scope="module")
def grpc_service(start_service) -> Iterator[Connected]:
    running = start_service(max_batch_size=8)
    with grpc.insecure_channel(running.grpc_target) as channel:
        yield Connected(running, channel)
    running.stop()


def boxes_scores(response: pb.DetectResponse) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.array([[f.box.x1, f.box.y1, f.box.x2, f.box.y2] for f in response.faces]).reshape(-1, 4)
    return boxes, np.array([f.score for f in response.faces])


def assert_same_faces(actual: pb.DetectResponse, expected: pb.DetectResponse) -> None:
    actual_boxes, actual_scores = boxes_scores(actual)
    expected_boxes, expected_scores = boxes_scores(expected)
    assert actual_boxes.shape == expected_boxes.shape
    np.testing.assert_allclose(actual_boxes, expected_boxes, atol=1e-3)
    np.testing.assert_allclose(actual_scores, expected_scores, atol=1e-3)


def rpc_error(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, timeout=TIMEOUT_S, **kwargs)
    return caught.value


def error_code(error: grpc.RpcError) -> str | None:
    return dict(error.trailing_metadata() or ()).get("error-code")


def count(connected: Connected, metric: str, **labels: str) -> float:
    """The sample ``metric`` with exactly ``labels`` from the service's /metrics; 0 before the first."""
    text = httpx.get(connected.service.http_url + "/metrics", timeout=TIMEOUT_S).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric and sample.labels == labels:
                return sample.value
    return 0.0


# --- Detect, options, DetectBatch ------------------------------------------------------------------------------


def test_detect_returns_faces_in_image_pixels(grpc_service: Connected, images: dict[str, bytes]) -> None:
    response = grpc_service.stub.Detect(
        pb.DetectRequest(image=images["selfie_group.jpg"], request_id="r-1"), timeout=TIMEOUT_S
    )
    width, height = Image.open(io.BytesIO(images["selfie_group.jpg"])).size
    assert (response.width, response.height) == (width, height)
    assert response.model == "mobilenet0.25"
    assert response.request_id == "r-1"
    boxes, scores = boxes_scores(response)
    assert len(response.faces) >= 10  # a group selfie
    assert np.all(scores >= 0.5) and np.all(np.diff(scores) <= 0)
    assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
    assert np.all(boxes >= -1) and np.all(boxes[:, [0, 2]] <= width + 1) and np.all(boxes[:, [1, 3]] <= height + 1)
    for face in response.faces:
        assert len(face.landmarks) == 5 and face.crop_png == b""
        assert face.box.x1 - 1 <= face.landmarks[2].x <= face.box.x2 + 1  # the nose is inside its box
    assert response.timings.inference_ms > 0 and response.timings.decode_ms > 0


def test_unset_options_take_the_rest_defaults(grpc_service: Connected, images: dict[str, bytes]) -> None:
    image = images["wider_train_band_crowd.jpg"]
    implicit = grpc_service.stub.Detect(pb.DetectRequest(image=image), timeout=TIMEOUT_S)
    explicit = grpc_service.stub.Detect(
        pb.DetectRequest(
            image=image,
            options=pb.DetectOptions(
                score_threshold=0.5, nms_threshold=0.4, min_face_size=0, return_landmarks=True, return_crops=False
            ),
        ),
        timeout=TIMEOUT_S,
    )
    assert_same_faces(implicit, explicit)


def test_options_filter_and_shape_faces(grpc_service: Connected, images: dict[str, bytes]) -> None:
    image = images["selfie_group.jpg"]
    everything = grpc_service.stub.Detect(pb.DetectRequest(image=image), timeout=TIMEOUT_S)
    _, all_scores = boxes_scores(everything)

    confident = grpc_service.stub.Detect(
        pb.DetectRequest(image=image, options=pb.DetectOptions(score_threshold=0.95)), timeout=TIMEOUT_S
    )
    assert len(confident.faces) == int(np.sum(all_scores > 0.95)) < len(everything.faces)

    top3 = grpc_service.stub.Detect(
        pb.DetectRequest(image=image, options=pb.DetectOptions(max_faces=3, return_landmarks=False, return_crops=True)),
        timeout=TIMEOUT_S,
    )
    np.testing.assert_allclose(boxes_scores(top3)[1], all_scores[:3], atol=1e-6)
    for face in top3.faces:
        assert len(face.landmarks) == 0
        crop = Image.open(io.BytesIO(face.crop_png))
        assert (crop.format, crop.size, crop.mode) == ("PNG", (112, 112), "RGB")


@pytest.mark.parametrize(
    ("options", "code"),
    [
        (pb.DetectOptions(return_mesh=True), "mesh_unavailable"),
        (pb.DetectOptions(score_threshold=1.5), "validation_error"),
    ],
)
def test_unusable_options_are_invalid_argument(
    grpc_service: Connected, images: dict[str, bytes], options: pb.DetectOptions, code: str
) -> None:
    error = rpc_error(
        grpc_service.stub.Detect, pb.DetectRequest(image=images["wider_train_band_crowd.jpg"], options=options)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(error) == code


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_image"),
        (b"definitely not an image", "invalid_image"),
        ("truncated", "corrupt_image"),
    ],
)
def test_bad_image_is_invalid_argument_with_error_code(
    grpc_service: Connected, images: dict[str, bytes], data: bytes | str, code: str
) -> None:
    if data == "truncated":
        data = images["selfie_group.jpg"][:4000]
    rejected_before = count(
        grpc_service, "facelocal_requests_total", protocol="grpc", endpoint="Detect", status="INVALID_ARGUMENT"
    )
    error = rpc_error(grpc_service.stub.Detect, pb.DetectRequest(image=data))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(error) == code
    assert error.details()
    rejected_after = count(
        grpc_service, "facelocal_requests_total", protocol="grpc", endpoint="Detect", status="INVALID_ARGUMENT"
    )
    assert rejected_after == rejected_before + 1


def test_batch_agrees_with_single_requests_and_isolates_a_bad_image(
    grpc_service: Connected, images: dict[str, bytes]
) -> None:
    selfie, crowd = images["selfie_group.jpg"], images["wider_train_band_crowd.jpg"]
    singles = [grpc_service.stub.Detect(pb.DetectRequest(image=image), timeout=TIMEOUT_S) for image in (selfie, crowd)]
    batch = grpc_service.stub.DetectBatch(
        pb.DetectBatchRequest(images=[selfie, b"\xff\xd8\xff broken", crowd], request_id="b-1"), timeout=TIMEOUT_S
    )
    assert batch.request_id == "b-1"
    assert [item.WhichOneof("outcome") for item in batch.items] == ["result", "error", "result"]
    assert batch.items[1].error.code in {"corrupt_image", "invalid_image"} and batch.items[1].error.message
    assert_same_faces(batch.items[0].result, singles[0])
    assert_same_faces(batch.items[2].result, singles[1])
    assert (batch.items[2].result.width, batch.items[2].result.height) == (singles[1].width, singles[1].height)


def test_empty_batch_is_invalid_argument(grpc_service: Connected) -> None:
    error = rpc_error(grpc_service.stub.DetectBatch, pb.DetectBatchRequest())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(error) == "validation_error"


def test_list_models(grpc_service: Connected) -> None:
    (model,) = grpc_service.stub.ListModels(pb.ListModelsRequest(), timeout=TIMEOUT_S).models
    assert (model.name, model.backend, model.has_dense, model.ready) == ("mobilenet0.25", "onnxruntime", False, True)
    assert (model.canvas_size, model.max_batch_size) == (640, 8)


# --- DetectStream ----------------------------------------------------------------------------------------------


def test_stream_answers_in_request_order_and_batches_frames(grpc_service: Connected, images: dict[str, bytes]) -> None:
    names = ("selfie_group.jpg", "wider_train_band_crowd.jpg")
    expected = {
        name: grpc_service.stub.Detect(pb.DetectRequest(image=images[name]), timeout=TIMEOUT_S) for name in names
    }
    frames = [names[i % 2] for i in range(20)]
    inferences_before = count(grpc_service, "facelocal_inferences_total")

    responses = list(
        grpc_service.stub.DetectStream(
            (pb.DetectRequest(image=images[name], request_id=f"frame-{i}") for i, name in enumerate(frames)),
            timeout=TIMEOUT_S,
        )
    )

    assert [r.request_id for r in responses] == [f"frame-{i}" for i in range(len(frames))]
    for response, name in zip(responses, frames, strict=True):
        assert response.WhichOneof("outcome") == "result"
        assert response.result.width == expected[name].width
        assert_same_faces(response.result, expected[name])
    # Frames in flight together share inferences with each other.
    assert count(grpc_service, "facelocal_inferences_total") - inferences_before < len(frames)
    assert count(grpc_service, "facelocal_requests_total", protocol="grpc", endpoint="DetectStream", status="OK") >= 20


def test_stream_answers_a_bad_frame_in_band_and_continues(grpc_service: Connected, images: dict[str, bytes]) -> None:
    good = images["wider_train_band_crowd.jpg"]
    frames = [good, b"garbage", good, pb.DetectOptions(return_mesh=True), good]
    requests = [
        pb.DetectRequest(image=good, options=frame, request_id=str(i))
        if isinstance(frame, pb.DetectOptions)
        else pb.DetectRequest(image=frame, request_id=str(i))
        for i, frame in enumerate(frames)
    ]
    responses = list(grpc_service.stub.DetectStream(iter(requests), timeout=TIMEOUT_S))
    assert [r.request_id for r in responses] == ["0", "1", "2", "3", "4"]
    assert [r.WhichOneof("outcome") for r in responses] == ["result", "error", "result", "error", "result"]
    assert (responses[1].error.code, responses[3].error.code) == ("invalid_image", "mesh_unavailable")
    assert_same_faces(responses[4].result, responses[0].result)


def test_empty_stream_ends_cleanly(grpc_service: Connected) -> None:
    assert list(grpc_service.stub.DetectStream(iter(()), timeout=TIMEOUT_S)) == []


# --- health and reflection -------------------------------------------------------------------------------------


def test_health_is_serving_after_warm_up(grpc_service: Connected) -> None:
    health = health_pb2_grpc.HealthStub(grpc_service.channel)
    for name in ("", SERVICE):
        status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=TIMEOUT_S).status
        assert status == health_pb2.HealthCheckResponse.SERVING


def test_health_follows_readiness(start_service, connect) -> None:
    running = start_service(wait_ready=False, wrap_backend=lambda inner: GatedBackend(inner, gated=True))
    health = health_pb2_grpc.HealthStub(connect(running).channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=TIMEOUT_S)
    assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE):
        status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=TIMEOUT_S).status
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING

    running.backend.open()  # the warm-up inference passes

    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING  # pushed by the readiness follower
    assert (
        health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=TIMEOUT_S).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    watch.cancel()


def test_reflection_lists_and_describes_the_service(grpc_service: Connected) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(grpc_service.channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE),
    ]
    listing, described = list(reflection.ServerReflectionInfo(iter(requests), timeout=TIMEOUT_S))
    names = {s.name for s in listing.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names
    from google.protobuf import descriptor_pb2

    (serialized,) = described.file_descriptor_response.file_descriptor_proto
    descriptor = descriptor_pb2.FileDescriptorProto.FromString(serialized)
    assert descriptor.package == "facelocal.v1"
    methods = {m.name for m in descriptor.service[0].method}
    assert methods == {"Detect", "DetectBatch", "DetectStream", "ListModels", "Anonymize"}


# --- authentication and limits ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(start_service, images: dict[str, bytes]) -> Iterator[grpc.Channel]:
    """A channel to the full service (``facelocal serve``'s code path) with an API key and a body limit
    large enough for wider_train_band_crowd.jpg, too small for selfie_group.jpg."""
    limit = (len(images["wider_train_band_crowd.jpg"]) + len(images["selfie_group.jpg"])) // 2
    running = start_service(api_key="s3cret", max_body_bytes=limit)
    with grpc.insecure_channel(running.grpc_target) as channel:
        yield channel
    running.stop()


@pytest.mark.parametrize("metadata", [None, (("authorization", "Bearer wrong"),), (("authorization", "s3cret"),)])
def test_api_key_is_required_when_set(guarded: grpc.Channel, images: dict[str, bytes], metadata) -> None:
    error = rpc_error(
        pb_grpc.FaceDetectorStub(guarded).Detect,
        pb.DetectRequest(image=images["wider_train_band_crowd.jpg"]),
        metadata=metadata,
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_code(error) == "unauthorized"

    stream = pb_grpc.FaceDetectorStub(guarded).DetectStream(
        iter([pb.DetectRequest(image=images["wider_train_band_crowd.jpg"])]), metadata=metadata
    )
    with pytest.raises(grpc.RpcError) as caught:
        list(stream)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_valid_api_key_is_accepted_and_health_stays_open(guarded: grpc.Channel, images: dict[str, bytes]) -> None:
    bearer = (("authorization", "Bearer s3cret"),)
    response = pb_grpc.FaceDetectorStub(guarded).Detect(
        pb.DetectRequest(image=images["wider_train_band_crowd.jpg"]), metadata=bearer, timeout=TIMEOUT_S
    )
    assert len(response.faces) >= 10
    (frame,) = pb_grpc.FaceDetectorStub(guarded).DetectStream(
        iter([pb.DetectRequest(image=images["wider_train_band_crowd.jpg"])]), metadata=bearer, timeout=TIMEOUT_S
    )
    assert_same_faces(frame.result, response)
    health = health_pb2_grpc.HealthStub(guarded)
    assert (
        health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S).status
        == health_pb2.HealthCheckResponse.SERVING
    )


def test_message_over_max_body_bytes_is_invalid_argument_not_worth_retrying(
    guarded: grpc.Channel, images: dict[str, bytes]
) -> None:
    bearer = (("authorization", "Bearer s3cret"),)
    stub = pb_grpc.FaceDetectorStub(guarded)
    error = rpc_error(stub.Detect, pb.DetectRequest(image=images["selfie_group.jpg"]), metadata=bearer)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error_code(error) == "payload_too_large"
    # A frame of a stream gets the same answer in-band, and the stream goes on.
    frames = [pb.DetectRequest(image=images[name]) for name in ("selfie_group.jpg", "wider_train_band_crowd.jpg")]
    too_large, fine = stub.DetectStream(iter(frames), metadata=bearer, timeout=TIMEOUT_S)
    assert too_large.error.code == "payload_too_large" and len(fine.result.faces) > 20
    # Over twice the limit, gRPC refuses the message before reading it, as the .proto says.
    huge = rpc_error(stub.Detect, pb.DetectRequest(image=images["selfie_group.jpg"] * 2), metadata=bearer)
    assert huge.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and error_code(huge) is None


# --- messages that do not parse, and shutdown ------------------------------------------------------------------

# Field 1 as a length-delimited value running past the end: no message of any type parses from it.
GARBAGE = b"\x0a\xff\xff\xff\x0f" + b"\x00" * 16


@pytest.mark.parametrize("method", ["Detect", "DetectBatch", "ListModels", "Anonymize", "DetectStream"])
def test_a_message_that_does_not_parse_is_invalid_argument_without_internals(
    grpc_service: Connected, images: dict[str, bytes], method: str
) -> None:
    path = f"/{SERVICE}/{method}"
    if method == "DetectStream":
        # Frames before the garbage are answered; then the call ends INVALID_ARGUMENT.
        call = grpc_service.channel.stream_stream(path)(
            iter([pb.DetectRequest(image=images["wider_train_band_crowd.jpg"]).SerializeToString(), GARBAGE]),
            timeout=TIMEOUT_S,
        )
        answered = []
        with pytest.raises(grpc.RpcError) as caught:
            answered += [pb.DetectStreamResponse.FromString(raw) for raw in call]
        assert len(answered) <= 1
        error = caught.value
    else:
        error = rpc_error(grpc_service.channel.unary_unary(path), GARBAGE)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error_code(error) == "invalid_message"
    assert "Error" not in error.details() and "Exception" not in error.details() and "<class" not in error.details()


def test_garbage_from_a_client_without_the_key_is_unauthenticated(guarded: grpc.Channel) -> None:
    error = rpc_error(guarded.unary_unary(f"/{SERVICE}/Detect"), GARBAGE)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED and error_code(error) == "unauthorized"


def test_after_sigterm_a_streams_next_frame_is_answered_shutting_down(start_service, images: dict[str, bytes]) -> None:
    grace_s = 30.0
    running = start_service(shutdown_grace_s=grace_s)
    frames: queue.Queue = queue.Queue()
    request = pb.DetectRequest(image=images["wider_train_band_crowd.jpg"])
    with grpc.insecure_channel(running.grpc_target) as channel:
        stream = pb_grpc.FaceDetectorStub(channel).DetectStream(iter(frames.get, None), timeout=TIMEOUT_S)
        frames.put(pb.DetectRequest(image=request.image, request_id="before"))
        first = next(stream)
        assert first.request_id == "before" and len(first.result.faces) > 10
        started = time.monotonic()
        stopping = threading.Thread(target=running.stop, args=(TIMEOUT_S,))
        stopping.start()
        while _rest_answers(running.http_url):  # REST stops listening when shutdown begins
            time.sleep(0.05)
        frames.put(pb.DetectRequest(image=request.image, request_id="after"))
        answers = list(stream)
        frames.put(None)
        stopping.join(TIMEOUT_S)
    assert [(a.request_id, a.error.code) for a in answers] == [("after", "shutting_down")]
    # The stream ended at that frame, so shutdown did not wait out the grace period.
    assert not stopping.is_alive() and time.monotonic() - started < grace_s / 2


def _rest_answers(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=1)
    except httpx.HTTPError:
        return False
    return True


# --- queue full -------------------------------------------------------------------------------------------------


def test_full_queue_is_resource_exhausted(start_service, connect, images: dict[str, bytes]) -> None:
    running = start_service(max_batch_size=1, max_queue=1, wrap_backend=GatedBackend)
    connected, backend = connect(running), running.backend
    try:
        backend.gated = True
        request = pb.DetectRequest(image=images["selfie_group.jpg"])
        in_inference = connected.stub.Detect.future(request, timeout=TIMEOUT_S)
        assert backend.entered.wait(TIMEOUT_S)
        queued = connected.stub.Detect.future(request, timeout=TIMEOUT_S)
        deadline = time.monotonic() + TIMEOUT_S
        while count(connected, "facelocal_queue_depth") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)

        error = rpc_error(connected.stub.Detect, request)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        metadata = dict(error.trailing_metadata())
        assert metadata["error-code"] == "queue_full" and int(metadata["retry-after"]) >= 1

        backend.open()
        first, second = in_inference.result(), queued.result()
        assert len(first.faces) == len(second.faces) >= 10
    finally:
        backend.open()


# --- the full service: REST and gRPC side by side ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["selfie_group.jpg", "wider_train_band_crowd.jpg"])
def test_rest_and_grpc_return_the_same_faces(service: RunningService, images: dict[str, bytes], name: str) -> None:
    rest = httpx.post(
        f"{service.http_url}/v1/detect",
        content=images[name],
        headers={"content-type": "image/jpeg"},
        params={"score_threshold": 0.3, "return_crops": "true"},
        timeout=TIMEOUT_S,
    )
    assert rest.status_code == 200, rest.text
    rest_body = rest.json()
    with grpc.insecure_channel(service.grpc_target) as channel:
        response = pb_grpc.FaceDetectorStub(channel).Detect(
            pb.DetectRequest(image=images[name], options=pb.DetectOptions(score_threshold=0.3, return_crops=True)),
            timeout=TIMEOUT_S,
        )

    assert (response.width, response.height, response.model) == (
        rest_body["width"],
        rest_body["height"],
        rest_body["model"],
    )
    assert len(response.faces) == len(rest_body["faces"]) > 0
    grpc_boxes, grpc_scores = boxes_scores(response)
    np.testing.assert_allclose(grpc_boxes, [f["box"] for f in rest_body["faces"]], atol=1e-3)
    np.testing.assert_allclose(grpc_scores, [f["score"] for f in rest_body["faces"]], atol=1e-6)
    grpc_landmarks = [[[p.x, p.y] for p in f.landmarks] for f in response.faces]
    np.testing.assert_allclose(grpc_landmarks, [f["landmarks"] for f in rest_body["faces"]], atol=1e-3)
    for grpc_face, rest_face in zip(response.faces, rest_body["faces"], strict=True):
        assert grpc_face.crop_png == base64.b64decode(rest_face["crop"])


def test_rest_and_grpc_report_the_same_error(service: RunningService) -> None:
    rest = httpx.post(
        f"{service.http_url}/v1/detect", content=b"\xff\xd8\xff broken", headers={"content-type": "image/jpeg"}
    )
    with grpc.insecure_channel(service.grpc_target) as channel:
        error = rpc_error(pb_grpc.FaceDetectorStub(channel).Detect, pb.DetectRequest(image=b"\xff\xd8\xff broken"))
    assert rest.status_code == 400 and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(error) == rest.json()["error"]["code"]
    assert error.details() == rest.json()["error"]["message"]
