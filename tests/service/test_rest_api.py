"""The REST API against a real uvicorn server on loopback: input forms, options, batch, models, OpenAPI."""

from __future__ import annotations

import base64
from typing import Annotated

import numpy as np
import pytest
from fastapi import FastAPI, Query

from service.rest.docs import query_parameters
from service.schemas import AnonymizeOptions, DetectOptions
from tests.service.helpers import assert_same_faces, boxes, photo_bytes

SELFIE_FACES = 26  # faces above 0.5 in selfie_group.jpg with the release weights on the 640 canvas


@pytest.fixture(scope="module")
def selfie_result(http) -> dict:
    response = http.post("/v1/detect", content=photo_bytes(), headers={"content-type": "image/jpeg"})
    assert response.status_code == 200, response.text
    return response.json()


def test_raw_body_finds_the_faces_in_image_pixels(selfie_result) -> None:
    assert (selfie_result["width"], selfie_result["height"]) == (1024, 624)
    assert selfie_result["model"] == "mobilenet0.25"
    assert len(selfie_result["faces"]) == SELFIE_FACES
    found = boxes(selfie_result)
    assert (found[:, 2] > found[:, 0]).all() and (found[:, 3] > found[:, 1]).all()
    assert found.min() >= 0 and found[:, 2].max() <= 1024 and found[:, 3].max() <= 624
    scores = [face["score"] for face in selfie_result["faces"]]
    assert scores == sorted(scores, reverse=True) and min(scores) > 0.5
    for face in selfie_result["faces"]:
        points = np.array(face["landmarks"])
        x1, y1, x2, y2 = face["box"]
        assert points.shape == (5, 2)
        # Landmarks of a real face sit inside (or within a few px of) its box.
        assert (points[:, 0] > x1 - 5).all() and (points[:, 0] < x2 + 5).all()
        assert (points[:, 1] > y1 - 5).all() and (points[:, 1] < y2 + 5).all()
    # Fields a request did not ask for are left out, not sent as null.
    assert set(selfie_result["timings_ms"]) == {"decode", "queue", "inference", "postprocess"}, "no mesh asked for"
    assert all(value >= 0 for value in selfie_result["timings_ms"].values())
    assert "mesh_truncated" not in selfie_result
    assert all(
        set(face) == {"box", "score", "landmarks", "landmarks_source"} and face["landmarks_source"] == "detector"
        for face in selfie_result["faces"]
    )


def test_multipart_and_json_give_the_same_faces_as_raw(http, selfie_result) -> None:
    data = photo_bytes()
    multipart = http.post("/v1/detect", files={"image": ("selfie.jpg", data, "image/jpeg")})
    as_json = http.post("/v1/detect", json={"image": base64.b64encode(data).decode()})
    data_url = http.post("/v1/detect", json={"image": "data:image/jpeg;base64," + base64.b64encode(data).decode()})
    for response in (multipart, as_json, data_url):
        assert response.status_code == 200, response.text
        assert_same_faces(response.json(), selfie_result)


def test_batch_agrees_with_single_requests(http, selfie_result) -> None:
    crowd = http.post(
        "/v1/detect", content=photo_bytes("wider_train_band_crowd.jpg"), headers={"content-type": "image/jpeg"}
    ).json()
    files = [
        ("images", ("a.jpg", photo_bytes(), "image/jpeg")),
        ("images", ("b.jpg", photo_bytes("wider_train_band_crowd.jpg"), "image/jpeg")),
    ]
    multipart = http.post("/v1/detect/batch", files=files)
    encoded = [
        base64.b64encode(photo_bytes(name)).decode() for name in ("selfie_group.jpg", "wider_train_band_crowd.jpg")
    ]
    as_json = http.post("/v1/detect/batch", json={"images": encoded})
    for response in (multipart, as_json):
        assert response.status_code == 200, response.text
        first, second = response.json()["results"]
        assert_same_faces(first, selfie_result)
        assert_same_faces(second, crowd)


def test_options_filter_the_faces(http, selfie_result) -> None:
    data, headers = photo_bytes(), {"content-type": "image/jpeg"}
    top3 = http.post("/v1/detect", content=data, headers=headers, params={"max_faces": 3}).json()
    assert top3["faces"] == selfie_result["faces"][:3]

    strict = http.post("/v1/detect", content=data, headers=headers, params={"score_threshold": 0.9}).json()
    expected = [face for face in selfie_result["faces"] if face["score"] > 0.9]
    assert 0 < len(strict["faces"]) < SELFIE_FACES
    np.testing.assert_allclose(boxes(strict), boxes({"faces": expected}), atol=0.05)

    sides = np.minimum(*(boxes(selfie_result)[:, 2:] - boxes(selfie_result)[:, :2]).T)
    limit = float(np.median(sides))
    large = http.post("/v1/detect", content=data, headers=headers, params={"min_face_size": limit}).json()
    assert len(large["faces"]) == int((sides >= limit - 0.01).sum())
    assert all(min(f["box"][2] - f["box"][0], f["box"][3] - f["box"][1]) >= limit - 0.01 for f in large["faces"])

    bare = http.post("/v1/detect", content=data, headers=headers, params={"return_landmarks": "false"}).json()
    assert len(bare["faces"]) == SELFIE_FACES and all(set(face) == {"box", "score"} for face in bare["faces"])


def test_json_options_override_query_options(http) -> None:
    body = {"image": base64.b64encode(photo_bytes()).decode(), "max_faces": 2}
    response = http.post("/v1/detect", json=body, params={"max_faces": 5})
    assert response.status_code == 200 and len(response.json()["faces"]) == 2


def test_loose_nms_keeps_more_overlapping_boxes(http, selfie_result) -> None:
    loose = http.post(
        "/v1/detect", content=photo_bytes(), headers={"content-type": "image/jpeg"}, params={"nms_threshold": 0.95}
    ).json()
    assert len(loose["faces"]) > len(selfie_result["faces"])


def test_crops_are_112px_pngs(http) -> None:
    from io import BytesIO

    from PIL import Image

    response = http.post(
        "/v1/detect",
        content=photo_bytes(),
        headers={"content-type": "image/jpeg"},
        params={"return_crops": "true", "max_faces": 2},
    )
    faces = response.json()["faces"]
    assert len(faces) == 2
    for face in faces:
        crop = Image.open(BytesIO(base64.b64decode(face["crop"])))
        assert (crop.format, crop.size, crop.mode) == ("PNG", (112, 112), "RGB")
        # A face, not padding: the crop has real contrast.
        assert np.asarray(crop).std() > 20


def test_return_mesh_without_a_mesh_model_is_422(http) -> None:
    response = http.post(
        "/v1/detect", content=photo_bytes(), headers={"content-type": "image/jpeg"}, params={"return_mesh": "true"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "mesh_unavailable"
    assert "no mesh model is configured" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "params",
    [{"score_threshold": 1.5}, {"max_faces": 0}, {"min_face_size": -1}, {"nms_threshold": "abc"}, {"bogus": 1}],
)
def test_invalid_options_are_422_json(http, params) -> None:
    response = http.post("/v1/detect", content=photo_bytes(), headers={"content-type": "image/jpeg"}, params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    (name,) = params
    assert response.json()["error"]["message"].startswith(f"{name}: "), "the message names the parameter"


def test_a_repeated_query_parameter_counts_with_its_last_value(http) -> None:
    response = http.post(
        "/v1/detect?max_faces=1&max_faces=3", content=photo_bytes(), headers={"content-type": "image/jpeg"}
    )
    assert response.status_code == 200 and len(response.json()["faces"]) == 3


@pytest.mark.parametrize("model", [DetectOptions, AnonymizeOptions])
def test_query_parameters_are_documented_as_fastapi_documents_a_query_model(model) -> None:
    """The routes parse their options with one pydantic call instead of FastAPI's ``Query()`` model (faster); the
    OpenAPI document must still say what FastAPI would say for that model."""

    async def declared(options) -> None: ...

    async def parsed_by_hand() -> None: ...

    declared.__annotations__["options"] = Annotated[model, Query()]
    app = FastAPI()
    app.post("/declared")(declared)
    app.post("/by-hand", openapi_extra={"parameters": query_parameters(model)})(parsed_by_hand)
    paths = app.openapi()["paths"]
    assert paths["/by-hand"]["post"]["parameters"] == paths["/declared"]["post"]["parameters"]


def test_health_models_and_unknown_routes(http) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ready"}
    models = http.get("/v1/models").json()["models"]
    assert models == [
        {
            "name": "mobilenet0.25",
            "role": "detector",
            "backend": "onnxruntime",
            "has_dense": False,
            "canvas_size": 640,
            "max_batch_size": 8,
            "precision": "fp32",
            "ready": True,
        }
    ]
    missing = http.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong_method = http.get("/v1/detect")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_openapi_documents_every_field_and_error(http) -> None:
    spec = http.get("/openapi.json").json()
    for path, statuses in {
        "/v1/detect": {"400", "401", "413", "415", "422", "503"},
        "/v1/detect/batch": {"400", "413", "415", "422", "503"},
        "/v1/anonymize": {"400", "401", "413", "415", "422", "503"},
    }.items():
        operation = spec["paths"][path]["post"]
        assert statuses <= set(operation["responses"])
        for status in statuses:
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
        assert {"multipart/form-data", "application/json"} <= set(operation["requestBody"]["content"])
    assert {"image/jpeg", "image/png", "image/webp", "image/bmp"} <= set(
        spec["paths"]["/v1/detect"]["post"]["requestBody"]["content"]
    )
    for name in ("ImageResult", "Face", "Pose", "Quality", "Timings", "ErrorBody", "ModelInfo"):
        for field, prop in spec["components"]["schemas"][name]["properties"].items():
            assert prop.get("description"), f"{name}.{field} has no description"
    # The core holds crops as PNG bytes; REST documents and sends them as base64 text.
    crop = spec["components"]["schemas"]["Face"]["properties"]["crop"]["anyOf"]
    assert {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"} in crop
    query = {p["name"]: p for p in spec["paths"]["/v1/detect"]["post"]["parameters"] if p["in"] == "query"}
    assert set(query) == {
        "score_threshold",
        "nms_threshold",
        "max_faces",
        "min_face_size",
        "return_landmarks",
        "return_crops",
        "return_mesh",
        "landmarks",
        "return_pose",
        "return_quality",
        "tta",
        "mesh_min_face",
        "max_size",
    }
    anonymize = spec["paths"]["/v1/anonymize"]["post"]
    assert {p["name"] for p in anonymize["parameters"]} == {
        "mode",
        "score_threshold",
        "nms_threshold",
        "tta",
        "max_size",
        "return_regions",
    }
    assert {"image/jpeg", "image/png", "application/json"} <= set(anonymize["responses"]["200"]["content"])
    assert query["tta"]["schema"]["enum"] == ["none", "flip", "multiscale", "flip,multiscale", "auto"]
    assert query["max_size"]["schema"]["maximum"] == 1920  # this server's max_size_limit
    assert all(p.get("description") for p in query.values())
