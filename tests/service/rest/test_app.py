"""service/rest/app.py: every error leaves the app as ``{"error": {code, message}}`` with its headers."""

from __future__ import annotations


def test_unknown_routes_and_methods_have_their_own_codes(make_client) -> None:
    client, _ = make_client()
    missing, wrong_method = client.get("/v1/nothing"), client.get("/v1/detect")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")


def test_service_errors_carry_retry_after_and_www_authenticate(make_client) -> None:
    client, core = make_client(api_key="k")
    unauthorized = client.post("/v1/detect", content=b"x", headers={"content-type": "image/jpeg"})
    assert unauthorized.status_code == 401 and unauthorized.headers["www-authenticate"] == "Bearer"
    core.full = True
    full = client.post("/v1/detect", content=b"x", headers={"content-type": "image/jpeg", "authorization": "Bearer k"})
    assert (full.status_code, full.json()["error"]["code"], full.headers["retry-after"]) == (503, "queue_full", "1")


def test_a_bug_is_a_bare_500_internal_error(make_client, monkeypatch) -> None:
    client, core = make_client()

    async def broken(data, options):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(core, "detect", broken)
    answer = client.post("/v1/detect", content=b"x", headers={"content-type": "image/jpeg"})
    assert answer.status_code == 500 and answer.json() == {
        "error": {"code": "internal_error", "message": "internal server error"}
    }
