"""gRPC's edge: DetectionResult to protobuf straight from the arrays, rounded as REST's JSON is."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import ServiceError, queue_full
from service.grpc import converters
from service.grpc.gen import facelocal_pb2 as pb
from service.rest.shaping import result_json
from tests.service.result_fixtures import two_faces


def test_result_to_proto_carries_the_json_numbers() -> None:
    result = two_faces(with_mesh=True, crops=True)
    message = converters.result_to_proto(result, request_id="r1")
    body = result_json(result)
    assert (message.width, message.height, message.model, message.request_id) == (100, 80, "mobilenet0.25", "r1")
    assert not message.truncated and not message.mesh_truncated
    assert (message.timings.inference_ms, message.timings.mesh_ms) == (7.0, 3.0)
    for face, expected in zip(message.faces, body["faces"], strict=True):
        box = [face.box.x1, face.box.y1, face.box.x2, face.box.y2]
        np.testing.assert_allclose(box, expected["box"], atol=1e-5)  # proto floats are 32-bit
        assert face.score == pytest.approx(expected["score"], abs=1e-6)
        np.testing.assert_allclose([[p.x, p.y] for p in face.landmarks], expected["landmarks"], atol=1e-5)
    meshed, small = message.faces
    np.testing.assert_allclose(np.array(meshed.mesh).reshape(468, 3), body["faces"][0]["mesh"], atol=1e-4)
    assert meshed.mesh_score == pytest.approx(0.91235, abs=1e-6) and meshed.mesh_skipped == ""
    assert len(small.mesh) == 0 and not small.HasField("mesh_score") and small.mesh_skipped == "face_too_small"
    assert [face.crop_png for face in message.faces] == [b"\x89PNG one", b"\x89PNG two"]


def test_without_landmarks_or_mesh_the_fields_stay_empty() -> None:
    message = converters.result_to_proto(two_faces(landmarks=False))
    assert all(len(face.landmarks) == 0 and len(face.mesh) == 0 for face in message.faces)
    assert all(face.crop_png == b"" and face.mesh_skipped == "" for face in message.faces)


def test_batch_items_are_results_or_errors() -> None:
    assert converters.batch_item_to_proto(two_faces()).WhichOneof("outcome") == "result"
    item = converters.batch_item_to_proto(queue_full())
    assert (item.error.code, item.error.message) == ("queue_full", queue_full().message)


def test_options_from_proto_keep_rest_defaults_and_refuse_bad_values() -> None:
    from service.schemas import DetectOptions

    assert converters.options_from_proto(pb.DetectOptions(), DetectOptions) == DetectOptions()
    assert converters.options_from_proto(pb.DetectOptions(tta="auto", max_size=960), DetectOptions).max_size == 960
    with pytest.raises(ServiceError) as bad:
        converters.options_from_proto(pb.DetectOptions(score_threshold=2.0), DetectOptions)
    assert bad.value.http_status == 422
