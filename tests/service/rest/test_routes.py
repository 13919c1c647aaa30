"""service/rest/routes.py and dependencies.py: what each route hands the core and what it answers."""

from __future__ import annotations

import base64


def test_detect_passes_query_options_and_json_fields_win(make_client) -> None:
    client, core = make_client()
    image = base64.b64encode(b"abcd").decode()
    answer = client.post("/v1/detect?score_threshold=0.2&max_faces=3", json={"image": image, "score_threshold": 0.9})
    assert answer.status_code == 200 and answer.json()["width"] == 4
    data, options = core.seen[-1]
    assert data == b"abcd" and (options.score_threshold, options.max_faces) == (0.9, 3)


def test_batch_answers_each_item_in_order_a_bad_one_with_its_error(make_client) -> None:
    client, _ = make_client()
    files = [("images", (name, body, "application/octet-stream")) for name, body in (("a", b"aa"), ("b", b"bad"))]
    results = client.post("/v1/detect/batch", files=files).json()["results"]
    assert results[0]["width"] == 2 and results[1]["error"]["code"] == "invalid_image"


def test_options_the_server_cannot_honour_are_refused_before_the_body(make_client) -> None:
    client, core = make_client()
    answer = client.post("/v1/detect?max_size=99999", content=b"x", headers={"content-type": "image/jpeg"})
    assert (answer.status_code, answer.json()["error"]["code"]) == (422, "max_size_too_large") and not core.seen


def test_health_models_and_metrics(make_client) -> None:
    client, core = make_client()
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    assert [m["name"] for m in client.get("/v1/models").json()["models"]] == ["stub"]
    assert "facelocal_requests_total" in client.get("/metrics").text
    core.full = True
    assert client.get("/readyz").json()["error"]["code"] == "not_ready"
