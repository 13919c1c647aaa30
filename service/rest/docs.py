"""The API's documents: ``/openapi.json`` as this server answers, and Swagger UI at ``/docs`` served from the
installed swagger-ui-bundle package rather than a CDN, so that the docs work on an air-gapped host."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from swagger_ui_bundle import swagger_ui_path

from service.core import DetectionCore

OPENAPI_PATH = "/openapi.json"
ASSETS_PATH = "/docs/static"


def install_docs(app: FastAPI, core: DetectionCore) -> None:
    """``/docs`` and its assets on ``app`` (created with ``docs_url=None``), and an OpenAPI document that
    advertises only what this server accepts (see :func:`server_limits`)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_PATH,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
        )

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            restrict_fields(document, server_limits(core))
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the schema


def query_parameters(model: type[BaseModel]) -> list[dict]:
    """OpenAPI query parameters for the fields of ``model`` (a flat model of scalars), as FastAPI writes those of
    ``Annotated[model, Query()]``: for routes that parse the query themselves
    (:func:`service.rest.dependencies.query_options`)."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": field}
        | ({"description": field["description"]} if "description" in field else {})
        for name, field in schema["properties"].items()
    ]


def server_limits(core: DetectionCore) -> dict[str, dict]:
    """JSON-schema keywords that narrow request fields to what this server accepts, by field name: a batch
    holds at most ``max_batch_images`` images, ``max_size`` is at most the server's limit, and ``return_mesh``,
    ``return_pose`` and ``landmarks=mesh`` are allowed only when the mesh is served. A ``description`` here is
    added to the field's own: the live values of the server settings the field's description names."""
    settings = core.settings
    limits: dict[str, dict] = {
        "images": {"maxItems": settings.max_batch_images, "description": f"(this server: {settings.max_batch_images})"},
        "max_size": {
            "maximum": core.max_size_limit,
            "description": f"(this server: canvas_size {core.canvas_size}, max_size_limit {core.max_size_limit})",
        },
        "max_faces": {"description": f"(this server: max_faces {settings.max_faces}, max_crops {settings.max_crops})"},
        "return_mesh": {"description": f"(this server: mesh_max_faces {settings.mesh_max_faces})"},
    }
    if not core.mesh.available:
        limits["return_mesh"]["enum"] = [False]
        limits["return_pose"] = {"enum": [False]}
        limits["landmarks"] = {"enum": ["detector"]}
    return limits


def restrict_fields(document: dict, limits: dict[str, dict]) -> None:
    """Add ``limits`` to every query parameter and request-body property of ``document`` with that name (a
    ``description`` after the field's own)."""
    for operations in document["paths"].values():
        for operation in operations.values():
            fields = [(p["name"], p) for p in operation.get("parameters", ())]
            for content in operation.get("requestBody", {}).get("content", {}).values():
                fields += content["schema"].get("properties", {}).items()
            for name, field in fields:
                keywords = dict(limits.get(name, {}))
                # A query parameter carries its description beside its schema, a body property inside it.
                schema = field.get("schema", field)
                if "description" in keywords:
                    field["description"] = f"{field.get('description', '')} {keywords.pop('description')}".strip()
                schema.update(keywords)
