"""The try-it page: ``GET /`` and its static assets, a client of the public REST API and nothing more.

The page and its assets ship inside the package (``service/static``), so it works on an air-gapped host.
Neither needs the API key: the page asks for it and sends it with each API call.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# Not /static: that is a likely home for other assets (offline API docs, say).
ASSETS_PATH = "/page"

# Everything from this origin only. Crops arrive as data: URLs; the webcam preview is a MediaStream.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


def install_page(app: FastAPI) -> None:
    """Serve the page at ``/`` and its scripts and styles under ``/page``; kept out of the OpenAPI schema."""
    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS_PATH, StaticFiles(directory=STATIC_DIR), name="page-assets")
