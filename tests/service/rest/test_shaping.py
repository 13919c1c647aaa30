"""REST's edge: DetectionResult to the ImageResult JSON, fields a request did not ask for left out."""

from __future__ import annotations

import base64
import json

from service.errors import queue_full
from service.rest.shaping import batch_response, result_json
from service.schemas import BatchResponse, ImageResult
from tests.service.result_fixtures import two_faces


def test_a_plain_result_has_no_fields_nobody_asked_for() -> None:
    body = result_json(two_faces())
    assert set(body) == {"width", "height", "model", "faces", "truncated", "timings_ms"}
    assert body["timings_ms"] == {"decode": 1.0, "queue": 0.5, "inference": 7.0, "postprocess": 0.25}
    assert [set(face) for face in body["faces"]] == [{"box", "score", "landmarks"}] * 2
    assert body["faces"][0]["box"] == [10.12, 20.46, 50.79, 70.0]
    assert body["faces"][0]["score"] == 0.98765
    assert body["faces"][0]["landmarks"][0] == [0.33, 1.33]
    ImageResult.model_validate(body)  # what the OpenAPI document promises


def test_without_landmarks_faces_carry_box_and_score() -> None:
    assert [set(face) for face in result_json(two_faces(landmarks=False))["faces"]] == [{"box", "score"}] * 2


def test_meshes_and_skip_reasons_go_only_where_they_apply() -> None:
    body = result_json(two_faces(with_mesh=True))
    meshed, small = body["faces"]
    assert len(meshed["mesh"]) == 468 and meshed["mesh"][1] == [0.21, 0.29, 0.36]
    assert meshed["mesh_score"] == 0.91235 and "mesh_skipped" not in meshed
    assert small["mesh_skipped"] == "face_too_small" and "mesh" not in small and "mesh_score" not in small
    assert body["mesh_truncated"] is False and body["timings_ms"]["mesh"] == 3.0
    ImageResult.model_validate(body)


def test_crops_are_base64_png() -> None:
    faces = result_json(two_faces(crops=True))["faces"]
    assert [base64.b64decode(face["crop"]) for face in faces] == [b"\x89PNG one", b"\x89PNG two"]


def test_a_batch_keeps_each_image_result_or_error_in_order() -> None:
    response = batch_response([two_faces(), queue_full()])
    body = json.loads(response.body)
    assert body["results"][1] == {"error": {"code": "queue_full", "message": queue_full().message}}
    assert body["results"][0] == result_json(two_faces())
    BatchResponse.model_validate(body)
