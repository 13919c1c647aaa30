"""The FastAPI application: routes, JSON errors everywhere, body limit and metrics."""

from __future__ import annotations

import logging

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.budget import Budget
from service.core import DetectionCore
from service.errors import ServiceError, format_validation_errors, internal_error
from service.memory import IdleTrim
from service.rest.dependencies import require_api_key
from service.rest.docs import OPENAPI_PATH, install_docs
from service.rest.middleware import BodyLimitMiddleware, BodyReads, MetricsMiddleware
from service.rest.page import install_page
from service.rest.routes import anonymize_router, detect_router, health_router, metrics_router, models_router
from service.settings import Settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings, core: DetectionCore) -> FastAPI:
    """The REST API over ``core``. The caller starts and stops the core (see :mod:`service.main`), and calls
    ``app.state.body_reads.stop()`` when it starts shutting down."""
    app = FastAPI(
        title="facelocal",
        version="1.0.0",
        description="RetinaFace face localisation: boxes, scores, five landmarks and ArcFace-aligned crops. "
        "Every error is JSON {error: {code, message}}.",
        openapi_url=OPENAPI_PATH,
        docs_url=None,
        redoc_url=None,
        exception_handlers={
            ServiceError: _service_error,
            RequestValidationError: _request_validation_error,
            StarletteHTTPException: _http_error,
            Exception: _unexpected_error,
        },
    )
    app.state.settings = settings
    app.state.core = core
    app.state.body_reads = BodyReads()
    # Only with a key are /v1/* guarded, so the OpenAPI document declares bearer security only then.
    guard = [Depends(require_api_key)] if settings.api_key is not None else []
    for router in (detect_router, anonymize_router, models_router):
        app.include_router(router, dependencies=guard)
    for router in (health_router, metrics_router):
        app.include_router(router)
    install_page(app)
    install_docs(app, core)
    # The last added is outermost: metrics also count the 413s the body limit answers itself.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.body_timeout_s,
        reads=app.state.body_reads,
        bodies=Budget(settings.max_body_bytes_in_flight),
        trim=IdleTrim(),
    )
    app.add_middleware(MetricsMiddleware, metrics=core.metrics)
    return app


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    headers = {}
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    if exc.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if exc.http_status == 408:
        # The client is still sending (or stalled): end the connection rather than wait for the rest.
        headers["Connection"] = "close"
    return _error(exc.http_status, exc.code, exc.message, headers)


async def _request_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return _error(422, "validation_error", format_validation_errors(exc.errors()))


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return await _service_error(request, internal_error())
