"""return_mesh on the Triton backend: the facemesh model of model_repository/ on a real tritonserver.

The service with ``backend=triton`` sends the crops to Triton's ``facemesh`` model after detection and must
answer with the meshes the embedded ONNX Runtime service gives.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from facelocal.facemesh import OnnxFaceMesh, crop_faces
from service.backends.triton_mesh import TritonMeshBackend
from service.settings import Settings
from tests.local.tritonserver import TritonServer
from tests.service.helpers import FixedCanvasBackend, client, photo_bytes

PHOTOS = ("selfie_group.jpg", "two_people_hd.jpg", "masked_faces_grid.jpg")
MESH = {"return_mesh": "true"}
JPEG = {"content-type": "image/jpeg"}


@pytest.fixture(scope="module")
def embedded(start_service, mesh_onnx_path):
    # Triton's detector takes a fixed 640x640 canvas, so the embedded reference letterboxes onto the same square.
    return start_service(mesh_model_path=mesh_onnx_path, wrap_backend=FixedCanvasBackend)


@pytest.fixture(scope="module")
def remote(start_service, triton: TritonServer):
    return start_service(backend="triton", triton_url=triton.grpc_url, triton_mesh_model="facemesh")


def test_triton_meshes_equal_the_embedded_meshes(embedded, remote):
    with client(embedded.http_url) as local, client(remote.http_url) as served:
        models = served.get("/v1/models").json()["models"]
        assert [(m["role"], m["name"], m["backend"], m["ready"]) for m in models] == [
            ("detector", "mobilenet0.25", "triton", True),
            ("mesh", "facemesh", "triton", True),
        ]
        meshes = 0
        for name in PHOTOS:
            want = local.post("/v1/detect", content=photo_bytes(name), headers=JPEG, params=MESH).json()
            got = served.post("/v1/detect", content=photo_bytes(name), headers=JPEG, params=MESH)
            assert got.status_code == 200, got.text
            got = got.json()
            assert len(got["faces"]) == len(want["faces"]) > 0
            for a, b in zip(got["faces"], want["faces"], strict=True):
                assert ("mesh" in a, a.get("mesh_skipped")) == ("mesh" in b, b.get("mesh_skipped"))
                if "mesh" in a:
                    np.testing.assert_allclose(a["mesh"], b["mesh"], atol=0.05)
                    assert a["mesh_score"] == pytest.approx(b["mesh_score"], abs=1e-3)
                    meshes += 1
        assert meshes >= 15


def test_triton_mesh_backend_returns_the_onnx_outputs_and_batches(triton: TritonServer, mesh_repository_onnx):
    import tritonclient.grpc as grpcclient

    from facelocal.detector import Detector
    from facelocal.imageio import load_image
    from tests.paths import shared_file

    rgb = load_image(shared_file("images", "selfie_group.jpg"))
    (faces,) = Detector.from_weights(shared_file("weights", "mobilenet0.25_Final.pth")).detect([rgb])
    crops, _ = crop_faces(rgb, faces.boxes[:16], faces.landmarks[:16])
    want_vertices, want_logits = OnnxFaceMesh(mesh_repository_onnx, threads=1)(crops)
    stats = grpcclient.InferenceServerClient(triton.grpc_url)

    def counts() -> tuple[int, int]:
        (model,) = stats.get_inference_statistics("facemesh").model_stats
        return model.inference_count, model.execution_count

    async def run():
        backend = TritonMeshBackend(
            Settings(backend="triton", triton_url=triton.grpc_url, triton_mesh_model="facemesh")
        )
        try:
            whole = await backend.infer(crops)
            singles = await asyncio.gather(*(backend.infer(crop[None]) for crop in crops))
            return whole, singles
        finally:
            await backend.close()

    before = counts()
    (vertices, logits), singles = asyncio.run(run())
    # Triton's statistics may trail the answers on a busy machine: read them once they stop moving.
    after, deadline = counts(), time.monotonic() + 5.0
    while after[0] - before[0] < 2 * len(crops) and time.monotonic() < deadline:
        time.sleep(0.05)
        after = counts()
    inferences, executions = (now - start for now, start in zip(after, before, strict=True))
    stats.close()
    np.testing.assert_allclose(vertices, want_vertices, atol=1e-3)
    np.testing.assert_allclose(logits, want_logits, atol=1e-4)
    for row, (single_vertices, _) in enumerate(singles):
        np.testing.assert_allclose(single_vertices[0], want_vertices[row], atol=1e-3)
    assert inferences == 2 * len(crops)
    assert executions < 1 + len(crops), "Triton's dynamic batcher merged the single-crop requests"


def test_a_triton_model_that_is_not_facemesh_leaves_return_mesh_422(start_service, triton: TritonServer):
    wrong = start_service(backend="triton", triton_url=triton.grpc_url, triton_mesh_model="retinaface")
    with client(wrong.http_url) as http:
        assert http.post("/v1/detect", content=photo_bytes(), headers=JPEG).status_code == 200
        response = http.post("/v1/detect", content=photo_bytes(), headers=JPEG, params=MESH)
        assert response.status_code == 422 and response.json()["error"]["code"] == "mesh_unavailable"
        assert "not FaceMesh" in response.json()["error"]["message"]
