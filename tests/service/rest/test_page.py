"""service/rest/page.py: the try-it page and its assets come from the package, with a strict policy."""

from __future__ import annotations


def test_the_page_is_served_with_its_security_headers(make_client) -> None:
    client, _ = make_client()
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "/" not in client.get("/openapi.json").json()["paths"]  # kept out of the API document
