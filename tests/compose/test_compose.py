"""Each CPU profile of docker-compose.yml, up: healthy containers that serve, through their published ports, the
faces the in-process service finds on every shared photo (REST and gRPC), the mesh, the page and the API key;
and, behind Triton, a Triton container killed under load."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import numpy as np
import pytest

from facelocal.postprocess import box_iou
from service.grpc.gen import facelocal_pb2 as pb
from service.grpc.gen import facelocal_pb2_grpc as pb_grpc
from service.rest.page import ASSETS_PATH
from service.settings import Settings
from tests.compose.conftest import API_KEY, Deployment
from tests.local.compose import ROOT
from tests.paths import SHARED_DATA
from tests.service.helpers import JPEG, FixedCanvasBackend, boxes, client
from tests.service.test_grpc import boxes_scores

pytestmark = pytest.mark.compose

PHOTOS = sorted(path.name for path in (SHARED_DATA / "images").glob("*.jpg"))
AUTH = {"authorization": f"Bearer {API_KEY}"}
GRPC_AUTH = (("authorization", f"Bearer {API_KEY}"),)
MIN_IOU = 0.99
SCORE_TOLERANCE = 1e-3
MESH_TOLERANCE_PX = 0.5
POSE_TOLERANCE_DEG = 0.5
TIMEOUT_S = 30
# compose's FACELOCAL_TRITON_TIMEOUT_S: a request to a dead Triton must fail within a few of these.
TRITON_TIMEOUT_S = 2.0
RECOVERY_S = 90


def photo(name: str) -> bytes:
    return (SHARED_DATA / "images" / name).read_bytes()


@pytest.fixture(scope="module")
def reference(deployment: Deployment, start_service):
    """The in-process service with the container's backend settings and the models baked into its image: OpenVINO
    for the embedded API; for the Triton profile ONNX Runtime (what Triton runs) letterboxing onto Triton's fixed
    640x640 canvas."""
    models = {
        "model_path": ROOT / "artifacts" / "model.onnx",
        "mesh_model_path": ROOT / "artifacts" / "facemesh.onnx",
        "face_geometry_path": ROOT / "artifacts" / "face_geometry",
        "intra_op_threads": Settings.model_fields["intra_op_threads"].default,
    }
    if deployment.profile == "embedded":
        running = start_service(backend="openvino", **models)
    else:
        running = start_service(backend="onnxruntime", wrap_backend=FixedCanvasBackend, **models)
    yield running
    running.stop()


def detect(url: str, name: str, **params: str) -> dict:
    with client(url, headers=AUTH) as http:
        response = http.post("/v1/detect", params=params, content=photo(name), headers=JPEG)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def expected(reference) -> dict[str, dict]:
    """The in-process service's answer for each shared photo."""
    return {name: detect(reference.http_url, name) for name in PHOTOS}


@pytest.fixture(scope="module")
def stub(deployment: Deployment) -> Iterator[pb_grpc.FaceDetectorStub]:
    with grpc.insecure_channel(deployment.grpc_target) as channel:
        grpc.channel_ready_future(channel).result(TIMEOUT_S)
        yield pb_grpc.FaceDetectorStub(channel)


def assert_same_faces(expected: dict, served_boxes: np.ndarray, served_scores: np.ndarray) -> np.ndarray:
    """Every expected face is served with IoU >= MIN_IOU and its score within SCORE_TOLERANCE, and nothing else;
    returns, for each expected face, the index of the served one."""
    expected_boxes = boxes(expected)
    expected_scores = np.array([face["score"] for face in expected["faces"]])
    assert len(served_boxes) == len(expected_boxes)
    if not len(expected_boxes):
        return np.zeros(0, dtype=int)
    iou = box_iou(expected_boxes, served_boxes)
    match = iou.argmax(axis=1)
    assert len(set(match.tolist())) == len(match), "two expected faces matched one served face"
    assert iou.max(axis=1).min() >= MIN_IOU
    np.testing.assert_allclose(served_scores[match], expected_scores, atol=SCORE_TOLERANCE)
    return match


def test_containers_are_healthy(deployment: Deployment):
    for service in deployment.services():
        state = deployment.inspect(service)["State"]
        if service == "model-init":
            assert (state["Status"], state["ExitCode"]) == ("exited", 0)
        else:
            assert state["Health"]["Status"] == "healthy", service
    backend = "triton" if deployment.profile == "cpu" else "openvino"
    with client(deployment.http_url, headers=AUTH) as http:
        assert http.get("/readyz").status_code == 200
        models = http.get("/v1/models").json()["models"]
    assert [(model["role"], model["backend"], model["ready"]) for model in models] == [
        ("detector", backend, True),
        ("mesh", backend, True),
    ]


@pytest.mark.parametrize("name", PHOTOS)
def test_rest_serves_the_in_process_faces(deployment: Deployment, expected, name: str):
    served = detect(deployment.http_url, name)
    assert (served["width"], served["height"]) == (expected[name]["width"], expected[name]["height"])
    assert_same_faces(expected[name], boxes(served), np.array([face["score"] for face in served["faces"]]))


@pytest.mark.parametrize("name", PHOTOS)
def test_grpc_serves_the_in_process_faces(deployment: Deployment, stub, expected, name: str):
    response = stub.Detect(pb.DetectRequest(image=photo(name)), metadata=GRPC_AUTH, timeout=TIMEOUT_S)
    assert_same_faces(expected[name], *boxes_scores(response))


def test_return_mesh_serves_the_in_process_mesh(deployment: Deployment, reference):
    expected = detect(reference.http_url, "selfie_group.jpg", return_mesh="true")
    served = detect(deployment.http_url, "selfie_group.jpg", return_mesh="true")
    match = assert_same_faces(expected, boxes(served), np.array([face["score"] for face in served["faces"]]))
    meshed = [index for index, face in enumerate(expected["faces"]) if face.get("mesh") is not None]
    assert len(meshed) >= 10, "the group photo's faces are large enough for the mesh"
    assert [served["faces"][match[index]].get("mesh") is not None for index in range(len(match))] == [
        face.get("mesh") is not None for face in expected["faces"]
    ]
    meshes = np.array([served["faces"][match[index]]["mesh"] for index in meshed])
    assert meshes.shape == (len(meshed), 468, 3)
    np.testing.assert_allclose(meshes, [expected["faces"][index]["mesh"] for index in meshed], atol=MESH_TOLERANCE_PX)


def test_return_pose_serves_the_in_process_pose(deployment: Deployment, reference):
    # The canonical face is baked into the image: pose and the mesh's points, through Triton's facemesh in the
    # cpu profile.
    params = {"landmarks": "mesh", "return_pose": "true"}
    expected = detect(reference.http_url, "selfie_group.jpg", **params)
    served = detect(deployment.http_url, "selfie_group.jpg", **params)
    match = assert_same_faces(expected, boxes(served), np.array([face["score"] for face in served["faces"]]))
    assert sum("pose" in face for face in expected["faces"]) >= 10, "the group's large faces get a pose"
    for index, face in enumerate(expected["faces"]):
        got = served["faces"][match[index]]
        assert (got["landmarks_source"], "pose" in got) == (face["landmarks_source"], "pose" in face)
        if "pose" in face:
            for axis, value in face["pose"].items():
                assert abs(got["pose"][axis] - value) <= POSE_TOLERANCE_DEG, (axis, got["pose"], face["pose"])


def test_page_loads(deployment: Deployment):
    with client(deployment.http_url) as http:
        page = http.get("/")
        assert page.status_code == 200 and "<title>facelocal" in page.text
        assert http.get(f"{ASSETS_PATH}/app.js").status_code == 200


def test_api_key_from_compose_environment_is_enforced(deployment: Deployment, stub):
    with client(deployment.http_url) as http:
        refused = http.post("/v1/detect", content=photo("selfie_group.jpg"), headers=JPEG)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        assert http.get("/readyz").status_code == 200, "probes need no key"
    with pytest.raises(grpc.RpcError) as error:
        stub.Detect(pb.DetectRequest(image=photo("selfie_group.jpg")), timeout=TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED


@dataclass
class Load:
    """Clients posting one photo in a loop until stopped; every answer's status, error code and time."""

    url: str
    clients: int = 8
    stop: threading.Event = field(default_factory=threading.Event)
    answers: list[tuple[int, str | None, float]] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def run(self) -> None:
        image = photo("selfie_group.jpg")
        with client(self.url, headers=AUTH) as http:
            while not self.stop.is_set():
                started = time.monotonic()
                response = http.post("/v1/detect", content=image, headers=JPEG)
                code = None if response.status_code == 200 else response.json()["error"]["code"]
                self.answers.append((response.status_code, code, time.monotonic() - started))

    def __enter__(self) -> Load:
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(self.clients)]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(TIMEOUT_S)
        assert not any(thread.is_alive() for thread in self.threads), "a client hung"


def wait_ready(http, timeout_s: float = RECOVERY_S) -> float:
    """Seconds until /readyz answers 200."""
    started = time.monotonic()
    while http.get("/readyz").status_code != 200:
        assert time.monotonic() - started < timeout_s, f"not ready within {timeout_s} s"
        time.sleep(0.2)
    return time.monotonic() - started


@pytest.mark.parametrize("deployment", ["cpu"], indirect=True)
def test_triton_killed_under_load_gives_fast_503_and_the_api_recovers_by_itself(deployment: Deployment, stub):
    api_started = deployment.inspect("api-cpu")["State"]["StartedAt"]
    with client(deployment.http_url, headers=AUTH) as http, Load(deployment.http_url) as load:
        time.sleep(2)
        deployment.compose("kill", "triton-cpu")  # a stop compose asked for: the restart policy leaves it down
        time.sleep(3)
        with pytest.raises(grpc.RpcError) as error:
            stub.Detect(pb.DetectRequest(image=photo("selfie_group.jpg")), metadata=GRPC_AUTH, timeout=TIMEOUT_S)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert http.get("/readyz").status_code == 503, "not ready while Triton is down"
        deployment.compose("start", "triton-cpu")
        wait_ready(http)
        answered = len(load.answers)
        time.sleep(2)
    statuses = {(status, code) for status, code, _ in load.answers}
    assert statuses == {(200, None), (503, "backend_unavailable")}, statuses
    assert {status for status, _, _ in load.answers[answered:]} == {200}, "recovered: every answer is a 200 again"
    assert max(elapsed for _, _, elapsed in load.answers) < 3 * TRITON_TIMEOUT_S, "nothing hangs"
    assert deployment.inspect("api-cpu")["State"]["StartedAt"] == api_started, "the API was not restarted"


@pytest.mark.parametrize("deployment", ["cpu"], indirect=True)
def test_a_crashed_triton_is_restarted_by_its_restart_policy(deployment: Deployment):
    triton = deployment.inspect("triton-cpu")
    with client(deployment.http_url, headers=AUTH) as http:
        os.kill(triton["State"]["Pid"], signal.SIGKILL)  # from the host, as a crash: no compose command
        deadline = time.monotonic() + RECOVERY_S
        while http.get("/readyz").status_code == 200:  # until the API notices
            assert time.monotonic() < deadline
            time.sleep(0.05)
        wait_ready(http)
        assert http.post("/v1/detect", content=photo("selfie_group.jpg"), headers=JPEG).status_code == 200
    assert deployment.inspect("triton-cpu")["RestartCount"] == triton["RestartCount"] + 1
