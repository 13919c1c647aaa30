"""The optional API key: off by default, and when set required on /v1/* only."""

from __future__ import annotations

import pytest

from tests.service.helpers import JPEG, client, photo_bytes

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def keyed_service(start_service):
    return start_service(api_key=KEY)


def test_no_key_configured_needs_no_header(service) -> None:
    with client(service.http_url) as http:
        assert http.post("/v1/detect", content=photo_bytes(), headers=JPEG).status_code == 200
        assert http.get("/v1/models").status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {KEY}", "Bearer", KEY])
def test_missing_or_wrong_key_is_401(keyed_service, authorization) -> None:
    headers = dict(JPEG) | ({"authorization": authorization} if authorization else {})
    with client(keyed_service.http_url) as http:
        for response in (
            http.post("/v1/detect", content=photo_bytes(), headers=headers),
            http.get("/v1/models", headers=headers),
            http.post("/v1/detect/batch", json={"images": []}, headers=headers),
        ):
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"


def test_right_key_is_accepted(keyed_service) -> None:
    with client(keyed_service.http_url, headers={"authorization": f"Bearer {KEY}"}) as http:
        response = http.post("/v1/detect", content=photo_bytes(), headers=JPEG)
        assert response.status_code == 200 and len(response.json()["faces"]) > 0
        assert http.get("/v1/models").status_code == 200


def test_health_and_metrics_stay_open(keyed_service) -> None:
    with client(keyed_service.http_url) as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/readyz").status_code == 200
        assert http.get("/metrics").status_code == 200


def test_openapi_declares_the_bearer_scheme(keyed_service) -> None:
    with client(keyed_service.http_url) as http:
        spec = http.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
