"""landmarks=mesh, return_pose, return_quality and /v1/anonymize end to end: a real service with the FaceMesh ONNX
export and MediaPipe's canonical face, over REST and gRPC, against the library on the same photos."""

from __future__ import annotations

import base64
import io
from functools import partial

import grpc
import numpy as np
import pytest
from PIL import Image

from service.grpc.gen import facelocal_pb2 as pb
from service.grpc.gen import facelocal_pb2_grpc as pb_grpc
from tests.paths import shared_file
from tests.service.helpers import JPEG, boxes, client, encode, grpc_stub, photo, photo_bytes, service_detector

EVERYTHING = {"landmarks": "mesh", "return_pose": "true", "return_quality": "true"}
PHOTOS = ("selfie_group.jpg", "two_people_hd.jpg", "single_face_closeup.jpg")


@pytest.fixture(scope="module")
def face_service(start_service, mesh_onnx_path, mesh_weights_path):
    return start_service(mesh_model_path=mesh_onnx_path, face_geometry_path=mesh_weights_path.parent)


@pytest.fixture(scope="module")
def http(face_service):
    with client(face_service.http_url) as http_client:
        yield http_client


@pytest.fixture(scope="module")
def stub(face_service):
    with grpc_stub(face_service.grpc_target) as face_stub:
        yield face_stub


def detect(http, name: str, params: dict) -> dict:
    response = http.post("/v1/detect", content=photo_bytes(name), headers=JPEG, params=params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def selfie(http) -> dict:
    return detect(http, "selfie_group.jpg", EVERYTHING)


def test_every_face_says_its_source_pose_and_quality(selfie):
    faces = selfie["faces"]
    meshed = [face for face in faces if face["landmarks_source"] == "mesh"]
    assert len(meshed) >= 15 and len(meshed) < len(faces), "faces on both sides of mesh_min_face"
    assert "mesh" not in faces[0] and "mesh_truncated" not in selfie, "the vertices only travel with return_mesh"
    # Pose and the mesh's points share one gate: a confident mesh.
    posed = [face for face in faces if "pose" in face]
    assert posed == meshed
    for face in posed:
        assert set(face["pose"]) == {"pitch", "yaw", "roll"}
        # The group faces the camera: no head turned beyond 45 degrees.
        assert max(abs(value) for value in face["pose"].values()) < 45, face["pose"]
        assert face["quality"]["frontalness"] == pytest.approx(
            1 - max(abs(face["pose"]["yaw"]), abs(face["pose"]["pitch"])) / 90, abs=1e-3
        )
    for face in faces:
        quality = face["quality"]
        assert quality["has_mesh"] or face["landmarks_source"] == "detector"
        assert 0 <= quality["brightness"] <= 1 and quality["sharpness"] >= 0 and quality["inter_ocular"] > 0
        eyes = np.subtract(face["landmarks"][1], face["landmarks"][0])
        assert quality["inter_ocular"] == pytest.approx(np.hypot(*eyes), abs=0.05), "measured on the chosen points"
        assert ("frontalness" in quality) == ("pose" in face)


def test_grpc_agrees_with_rest_on_every_new_field(selfie, stub):
    options = pb.DetectOptions(landmarks="mesh", return_pose=True, return_quality=True)
    response = stub.Detect(pb.DetectRequest(image=photo_bytes(), options=options), timeout=60)
    assert len(response.faces) == len(selfie["faces"])
    for message, face in zip(response.faces, selfie["faces"], strict=True):
        assert message.landmarks_source == face["landmarks_source"]
        np.testing.assert_allclose([[p.x, p.y] for p in message.landmarks], face["landmarks"], atol=0.02)
        assert message.HasField("pose") == ("pose" in face)
        if "pose" in face:
            for axis, value in face["pose"].items():
                assert getattr(message.pose, axis) == pytest.approx(value, abs=0.02)
        quality = face["quality"]
        assert message.quality.HasField("frontalness") == ("frontalness" in quality)
        for key, value in quality.items():
            assert getattr(message.quality, key) == pytest.approx(value, abs=1e-3), key


def test_a_batch_equals_single_calls(http):
    files = [("images", (name, photo_bytes(name), "image/jpeg")) for name in PHOTOS]
    batch = http.post("/v1/detect/batch", files=files, params=EVERYTHING)
    assert batch.status_code == 200, batch.text
    for name, result in zip(PHOTOS, batch.json()["results"], strict=True):
        single = detect(http, name, EVERYTHING)
        assert len(result["faces"]) == len(single["faces"]) > 0
        for a, b in zip(result["faces"], single["faces"], strict=True):
            assert a["landmarks_source"] == b["landmarks_source"] and ("pose" in a) == ("pose" in b)
            np.testing.assert_allclose(a["landmarks"], b["landmarks"], atol=0.05)
            if "pose" in a:
                np.testing.assert_allclose(list(a["pose"].values()), list(b["pose"].values()), atol=0.05)
            assert a["quality"]["usable"] == b["quality"]["usable"]
            assert a["quality"]["sharpness"] == pytest.approx(b["quality"]["sharpness"], abs=2e-3)


@pytest.fixture(scope="module")
def library(onnx_model_path, mesh_onnx_path):
    """``library(refine)``: the library's Detector on the service's model, runtime, canvas and thresholds."""
    return partial(service_detector, onnx_model_path, mesh_onnx_path)


@pytest.mark.parametrize("name", PHOTOS)
def test_mesh_landmarks_and_poses_are_the_librarys(http, library, mesh_weights_path, name: str):
    """landmarks=mesh is :func:`with_landmarks_from` on the library's meshes (one crop a face, as ``eval
    landmarks --mesh``); return_pose is :func:`head_poses` on meshes refined once (as ``eval pose``)."""
    from facelocal.imageio import decode_image
    from facelocal.landmark_source import with_landmarks_from
    from facelocal.pose import POSE_MESH_REFINE, CanonicalFace, head_poses

    rgb = decode_image(photo_bytes(name))
    served = detect(http, name, {"landmarks": "mesh"})["faces"]
    faces, sources = with_landmarks_from(library(0).detect([rgb])[0], "mesh")
    assert [face["landmarks_source"] for face in served] == sources.tolist()
    assert "mesh" in sources
    np.testing.assert_allclose([face["landmarks"] for face in served], faces.landmarks, atol=0.0100001)

    served = detect(http, name, {"return_pose": "true"})["faces"]
    poses = head_poses(library(POSE_MESH_REFINE).detect([rgb])[0], CanonicalFace.load(mesh_weights_path.parent))
    assert [("pose" in face) for face in served] == np.isfinite(poses).all(axis=1).tolist()
    for face, pose in zip(served, poses, strict=True):
        if "pose" in face:
            np.testing.assert_allclose([face["pose"][axis] for axis in ("pitch", "yaw", "roll")], pose, atol=0.02)


def test_crops_follow_the_chosen_landmarks(http):
    from facelocal.imageio import decode_image
    from service.alignment import align_face

    rgb = decode_image(photo_bytes("two_people_hd.jpg"))
    for source in ("detector", "mesh"):
        faces = detect(http, "two_people_hd.jpg", {"landmarks": source, "return_crops": "true"})["faces"]
        assert faces[0]["landmarks_source"] == source
        crop = np.asarray(Image.open(io.BytesIO(base64.b64decode(faces[0]["crop"]))), np.float32)
        expected = align_face(rgb, np.array(faces[0]["landmarks"], np.float32)).astype(np.float32)
        assert np.abs(crop - expected).mean() < 2.0, source


def test_without_the_mesh_model_the_mesh_options_are_refused(service):
    """The default test service has no mesh model: landmarks=mesh and return_pose are 422 / INVALID_ARGUMENT
    mesh_unavailable; return_quality still answers, without frontalness."""
    with client(service.http_url) as http:
        for params in ({"landmarks": "mesh"}, {"return_pose": "true"}):
            response = http.post("/v1/detect", content=photo_bytes(), headers=JPEG, params=params)
            assert response.status_code == 422 and response.json()["error"]["code"] == "mesh_unavailable", params
        quality = detect(http, "two_people_hd.jpg", {"return_quality": "true"})["faces"][0]["quality"]
        assert quality["has_mesh"] is False and "frontalness" not in quality and quality["sharpness"] > 0
    channel = grpc.insecure_channel(service.grpc_target)
    stub = pb_grpc.FaceDetectorStub(channel)
    for options in (pb.DetectOptions(landmarks="mesh"), pb.DetectOptions(return_pose=True)):
        with pytest.raises(grpc.RpcError) as refused:
            stub.Detect(pb.DetectRequest(image=photo_bytes(), options=options), timeout=60)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert ("error-code", "mesh_unavailable") in refused.value.trailing_metadata()
    channel.close()


# -- /v1/anonymize ------------------------------------------------------------------------------------------


def face_mask(regions: list[dict], width: int, height: int) -> np.ndarray:
    from facelocal.anonymize import region_mask

    return region_mask([np.array(region["polygon"], np.float32) for region in regions], width, height)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP"])
def test_anonymize_keeps_size_and_format_and_changes_only_faces(http, fmt: str):
    image = photo("two_people_hd.jpg")
    lossy = fmt in ("JPEG", "WEBP")
    data = encode(image, fmt, **({"quality": 95} if lossy else {}))
    headers = {"content-type": f"image/{fmt.lower()}"}
    bare = http.post("/v1/anonymize", content=data, headers=headers)
    assert bare.status_code == 200, bare.text
    assert bare.headers["content-type"] == headers["content-type"]
    answered = http.post("/v1/anonymize", content=data, headers=headers, params={"return_regions": "true"}).json()
    assert base64.b64decode(answered["image"]) == bare.content and answered["media_type"] == headers["content-type"]
    covered = Image.open(io.BytesIO(bare.content))
    assert (covered.format, covered.size) == (fmt, image.size)
    before = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.int16)
    after = np.asarray(covered.convert("RGB"), np.int16)
    regions = answered["regions"]
    assert len(regions) >= 2 and [region["kind"] for region in regions[:2]] == ["mesh", "mesh"]
    mask = face_mask(regions, *image.size)
    changed = np.abs(after - before).max(axis=2) > (12 if lossy else 0)
    assert changed[mask].mean() > 0.5, "the faces are blurred"
    assert (~changed[~mask]).mean() >= 0.9, "at least 90 % of the other pixels are untouched"


def test_anonymize_applies_exif_orientation_and_agrees_over_grpc(http, stub):
    image = photo("single_face_closeup.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: viewers rotate the pixels 90 degrees clockwise
    data = encode(image, "JPEG", quality=95, exif=exif.tobytes())
    answered = http.post("/v1/anonymize", content=data, headers=JPEG, params={"return_regions": "true"}).json()
    assert (answered["width"], answered["height"]) == (image.height, image.width)
    covered = Image.open(io.BytesIO(base64.b64decode(answered["image"])))
    assert covered.size == (image.height, image.width) and 0x0112 not in covered.getexif()
    response = stub.Anonymize(pb.AnonymizeRequest(image=data, request_id="a1"), timeout=60)
    assert (response.width, response.height, response.media_type) == (image.height, image.width, "image/jpeg")
    assert response.request_id == "a1" and len(response.regions) == len(answered["regions"]) >= 1
    for message, region in zip(response.regions, answered["regions"], strict=True):
        assert message.kind == region["kind"] and message.score == pytest.approx(region["score"], abs=1e-3)
        np.testing.assert_allclose([[p.x, p.y] for p in message.polygon], region["polygon"], atol=0.05)


def test_anonymize_searches_the_photo_at_the_presets_max_size(http, face_service):
    # The preset's detection, asked of /v1/detect, finds exactly the faces /v1/anonymize covers.
    from facelocal.anonymize import ANONYMIZE_MAX_SIZE, ANONYMIZE_SCORE_THRESHOLD, ANONYMIZE_TTA

    limit = min(ANONYMIZE_MAX_SIZE, face_service.settings.max_size_limit)
    preset = {"score_threshold": str(ANONYMIZE_SCORE_THRESHOLD), "tta": ANONYMIZE_TTA, "max_size": str(limit)}
    found = detect(http, "selfie_group.jpg", preset)
    regions = http.post("/v1/anonymize", content=photo_bytes(), headers=JPEG, params={"return_regions": "true"}).json()
    assert len(regions["regions"]) == len(found["faces"]) > 0
    np.testing.assert_allclose([r["box"] for r in regions["regions"]], boxes(found), atol=0.05)


def test_anonymize_modes_defaults_and_errors(http, stub):
    data = photo_bytes("two_people_hd.jpg")
    blurred = http.post("/v1/anonymize", content=data, headers=JPEG).content
    pixelated = http.post("/v1/anonymize", content=data, headers=JPEG, params={"mode": "pixelate"}).content
    assert blurred != pixelated
    # The high-recall preset finds at least the faces /v1/detect finds at its own threshold.
    found = detect(http, "selfie_group.jpg", {})["faces"]
    regions = http.post("/v1/anonymize", content=photo_bytes(), headers=JPEG, params={"return_regions": "true"}).json()[
        "regions"
    ]
    assert len(regions) >= len(found) and min(region["score"] for region in regions) < 0.5
    assert http.post("/v1/anonymize", content=data, headers=JPEG, params={"mode": "x"}).status_code == 422
    corrupt = http.post("/v1/anonymize", content=b"\xff\xd8\xff" + b"0" * 100, headers=JPEG)
    assert corrupt.status_code == 400 and corrupt.json()["error"]["code"]
    body = {"image": base64.b64encode(shared_file("images", "two_people_hd.jpg").read_bytes()).decode()}
    assert http.post("/v1/anonymize", json=body | {"mode": "pixelate"}).content == pixelated
    with pytest.raises(grpc.RpcError) as refused:
        stub.Anonymize(pb.AnonymizeRequest(image=data, options=pb.AnonymizeOptions(mode="x")), timeout=60)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
