"""return_mesh end to end: a real service with the FaceMesh ONNX export, over REST and gRPC.

Meshes are checked against the library computing them from the same faces, REST against gRPC, a batch against
single calls; images with no faces, only tiny faces and 100+ faces; the mesh batcher merging crops of
concurrent requests; /v1/models; and the 422 when no mesh model is configured.
"""

from __future__ import annotations

import asyncio
import base64
import io

import numpy as np
import pytest
from PIL import Image

from service.grpc.gen import facelocal_pb2 as pb
from tests.service.helpers import JPEG, client, encode, grpc_stub, metric, photo, photo_bytes, service_detector

MESH = {"return_mesh": "true"}


@pytest.fixture(scope="module")
def mesh_service(start_service, mesh_onnx_path):
    return start_service(mesh_model_path=mesh_onnx_path)


@pytest.fixture(scope="module")
def http(mesh_service):
    with client(mesh_service.http_url) as http_client:
        yield http_client


@pytest.fixture(scope="module")
def stub(mesh_service):
    with grpc_stub(mesh_service.grpc_target) as mesh_stub:
        yield mesh_stub


@pytest.fixture(scope="module")
def selfie(http) -> dict:
    response = http.post("/v1/detect", content=photo_bytes(), headers=JPEG, params=MESH)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_face_gets_a_mesh_or_a_reason(selfie):
    faces = selfie["faces"]
    meshed = [face for face in faces if "mesh" in face]
    small = [face for face in faces if "mesh" not in face]
    assert len(meshed) >= 15 and small, "the group photo has faces on both sides of 48 px"
    assert selfie["mesh_truncated"] is False and selfie["timings_ms"]["mesh"] > 0
    for face in meshed:
        mesh = np.array(face["mesh"])
        assert mesh.shape == (468, 3) and 0.0 <= face["mesh_score"] <= 1.0 and "mesh_skipped" not in face
        x1, y1, x2, y2 = face["box"]
        assert max(x2 - x1, y2 - y1) >= 48
        centre = mesh[:, :2].mean(axis=0)
        assert x1 < centre[0] < x2 and y1 < centre[1] < y2, "each mesh lies on its own face"
    for face in small:
        x1, y1, x2, y2 = face["box"]
        assert max(x2 - x1, y2 - y1) < 48
        assert ("mesh_score" not in face, face["mesh_skipped"]) == (True, "face_too_small")
    assert sum(face["mesh_score"] > 0.5 for face in meshed) >= 0.6 * len(meshed)


@pytest.fixture(scope="module")
def library(onnx_model_path, mesh_onnx_path):
    """The library's Detector on the service's model, runtime, canvas and thresholds."""
    return service_detector(onnx_model_path, mesh_onnx_path)


@pytest.mark.parametrize("tta", ["none", "auto"])
@pytest.mark.parametrize("name", ["selfie_group.jpg", "single_face_small.jpg", "two_people_hd.jpg"])
def test_the_service_gives_the_library_faces_landmarks_and_meshes(http, library, name: str, tta: str):
    """Library and service take the same steps (facelocal.pipeline), the meshes cropped from the same exact
    boxes: the answer is the library's faces, rounded once at the edge."""
    from facelocal.imageio import decode_image
    from facelocal.tta import TTAPlan

    data = photo_bytes(name)
    response = http.post("/v1/detect", content=data, headers=JPEG, params={**MESH, "tta": tta})
    assert response.status_code == 200, response.text
    served = response.json()["faces"]
    expected = library.detect_augmented(decode_image(data), TTAPlan.parse(tta)).faces()
    assert len(served) == len(expected) >= 1
    assert any("mesh" in face for face in served)
    for got, want in zip(served, expected, strict=True):
        assert {key for key in got if key not in ("mesh_skipped", "landmarks_source")} == set(want)
        for key, value in want.items():
            # The same numbers; the batch the service ran a canvas in may move the last bit of a float.
            np.testing.assert_allclose(got[key], value, atol=0.0100001, err_msg=f"{name} {tta} {key}")


def test_grpc_gives_the_rest_meshes_as_packed_floats(selfie, stub):
    request = pb.DetectRequest(image=photo_bytes(), options=pb.DetectOptions(return_mesh=True))
    response = stub.Detect(request, timeout=30)
    assert len(response.faces) == len(selfie["faces"]) and not response.mesh_truncated
    assert response.timings.mesh_ms > 0
    for message, face in zip(response.faces, selfie["faces"], strict=True):
        if "mesh" not in face:
            assert len(message.mesh) == 0 and not message.HasField("mesh_score")
            assert message.mesh_skipped == "face_too_small"
            continue
        assert len(message.mesh) == 1404 and message.mesh_skipped == ""
        np.testing.assert_allclose(np.array(message.mesh).reshape(468, 3), face["mesh"], atol=1e-3)
        assert message.mesh_score == pytest.approx(face["mesh_score"], abs=1e-5)
    # Packed: the mesh costs ~4 bytes a value on the wire, not a message per vertex.
    assert len(response.faces[0].SerializeToString()) < 1404 * 4 + 200


def test_min_face_option_and_landmarks_off(http):
    response = http.post(
        "/v1/detect",
        content=photo_bytes(),
        headers=JPEG,
        params={**MESH, "mesh_min_face": 70, "return_landmarks": "false"},
    )
    assert response.status_code == 200, response.text
    faces = response.json()["faces"]
    assert all("landmarks" not in face for face in faces), "landmarks stay off even though the crop used them"
    for face in faces:
        x1, y1, x2, y2 = face["box"]
        assert ("mesh" in face) == (max(x2 - x1, y2 - y1) >= 70)
    assert (
        http.post("/v1/detect", content=photo_bytes(), headers=JPEG, params={**MESH, "mesh_min_face": -1}).status_code
        == 422
    )


def test_batch_with_mesh_equals_single_calls(http):
    names = ("two_people_hd.jpg", "single_face_closeup.jpg", "masked_faces_grid.jpg")
    files = [("images", (name, photo_bytes(name), "image/jpeg")) for name in names]
    batch = http.post("/v1/detect/batch", files=files, params=MESH)
    assert batch.status_code == 200, batch.text
    for name, result in zip(names, batch.json()["results"], strict=True):
        single = http.post("/v1/detect", content=photo_bytes(name), headers=JPEG, params=MESH).json()
        assert len(result["faces"]) == len(single["faces"]) > 0
        for a, b in zip(result["faces"], single["faces"], strict=True):
            assert ("mesh" in a) == ("mesh" in b)
            if "mesh" in a:
                np.testing.assert_allclose(a["mesh"], b["mesh"], atol=0.05)
                assert a["mesh_score"] == pytest.approx(b["mesh_score"], abs=1e-3)


def test_no_faces_and_only_tiny_faces(http, mesh_service):
    blank = encode(Image.new("RGB", (320, 240), (200, 200, 200)), "PNG")
    response = http.post("/v1/detect", content=blank, headers={"content-type": "image/png"}, params=MESH)
    assert response.status_code == 200 and response.json()["faces"] == []
    assert response.json()["mesh_truncated"] is False

    before = metric(http.get("/metrics").text, "facelocal_mesh_inferences_total")
    group = photo()
    tiny = encode(group.resize((group.width // 3, group.height // 3), Image.BILINEAR), "JPEG", quality=95)
    response = http.post("/v1/detect", content=tiny, headers=JPEG, params={**MESH, "score_threshold": 0.3})
    faces = response.json()["faces"]
    assert response.status_code == 200 and faces
    assert all("mesh" not in face and face.get("mesh_skipped") == "face_too_small" for face in faces)
    assert metric(http.get("/metrics").text, "facelocal_mesh_inferences_total") == before, "no crop was run"


def test_a_hundred_faces_get_at_most_mesh_max_faces_meshes(start_service, mesh_onnx_path):
    """A 2x2 mosaic of the group photo (100+ faces) on a canvas large enough to find them: the 64 best-scoring
    faces of 48 px or more get meshes, the rest say mesh_limit, and the image says mesh_truncated."""
    group = photo()
    mosaic = Image.new("RGB", (group.width * 2, group.height * 2))
    for x in (0, group.width):
        for y in (0, group.height):
            mosaic.paste(group, (x, y))
    running = start_service(mesh_model_path=mesh_onnx_path, max_size_limit=2048, max_batch_size=1)
    with client(running.http_url) as http:
        body = http.post(
            "/v1/detect",
            content=encode(mosaic, "JPEG", quality=95),
            headers=JPEG,
            params={**MESH, "score_threshold": 0.3, "max_size": 2048},
        )
    assert body.status_code == 200, body.text
    result = body.json()
    faces = result["faces"]
    assert len(faces) >= 100
    meshed = [face for face in faces if "mesh" in face]
    limited = [face for face in faces if face.get("mesh_skipped") == "mesh_limit"]
    assert len(meshed) == 64 and limited and result["mesh_truncated"] is True
    assert min(face["score"] for face in meshed) >= max(face["score"] for face in limited)


def test_crops_of_concurrent_requests_share_mesh_inferences(mesh_service, http):
    import httpx

    before = metric(http.get("/metrics").text, "facelocal_mesh_inferences_total")
    image = photo_bytes("wider_train_band_crowd.jpg")

    async def burst() -> list[dict]:
        async with httpx.AsyncClient(base_url=mesh_service.http_url, timeout=60) as session:
            responses = await asyncio.gather(
                *(session.post("/v1/detect", content=image, headers=JPEG, params=MESH) for _ in range(6))
            )
        return [response.json() for response in responses]

    results = asyncio.run(burst())
    crops = sum("mesh" in face for result in results for face in result["faces"])
    inferences = metric(http.get("/metrics").text, "facelocal_mesh_inferences_total") - before
    assert crops >= 6 * 10
    assert inferences < crops / 4, f"{crops} crops in {inferences} mesh inferences"
    first = [face.get("mesh") for face in results[0]["faces"]]
    for other in results[1:]:
        assert [face.get("mesh") for face in other["faces"]] == first, "batching does not change a mesh"


def test_models_lists_the_mesh_model(http, stub):
    models = http.get("/v1/models").json()["models"]
    assert [(m["role"], m["name"], m["backend"]) for m in models] == [
        ("detector", "mobilenet0.25", "onnxruntime"),
        ("mesh", "facemesh", "onnxruntime"),
    ]
    assert models[0]["has_dense"] is True and models[1]["canvas_size"] == 192 and models[1]["ready"] is True
    listed = stub.ListModels(pb.ListModelsRequest(), timeout=10).models
    assert [(m.role, m.name) for m in listed] == [("detector", "mobilenet0.25"), ("mesh", "facemesh")]


def test_json_body_and_form_take_return_mesh(http):
    body = {"image": base64.b64encode(photo_bytes("two_people_hd.jpg")).decode(), "return_mesh": True}
    response = http.post("/v1/detect", json=body)
    assert response.status_code == 200 and "mesh" in response.json()["faces"][0]
    form = http.post(
        "/v1/detect",
        files={"image": ("a.jpg", io.BytesIO(photo_bytes("two_people_hd.jpg")), "image/jpeg")},
        params=MESH,
    )
    assert form.status_code == 200 and form.json()["faces"][0]["mesh"] == response.json()["faces"][0]["mesh"]


def test_mesh_model_settings(tmp_path, monkeypatch):
    from service.mesh import create_mesh_backend
    from service.settings import Settings

    backend, reason = create_mesh_backend(Settings(mesh_model_path=None))
    assert backend is None and "no mesh model" in reason
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FACELOCAL_MESH_MODEL_PATH")  # tests/conftest.py turns the default off
    backend, reason = create_mesh_backend(Settings())  # the default artifacts/facemesh.onnx, absent here
    assert backend is None and "facelocal export onnx --mesh" in reason
    with pytest.raises(FileNotFoundError, match="export onnx --mesh"):
        create_mesh_backend(Settings(mesh_model_path=tmp_path / "absent.onnx"))
    assert Settings(mesh_model_path="none").mesh_model_path is None
