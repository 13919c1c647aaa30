"""The REST routes: detection, health, models and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from facelocal.anonymize import ANONYMIZE_SCORE_THRESHOLD, ANONYMIZE_TTA
from service.errors import unavailable
from service.images import MEDIA_TYPES
from service.rest.dependencies import (
    CheckedAnonymizeOptions,
    CheckedOptions,
    CoreDep,
)
from service.rest.docs import query_parameters
from service.rest.inputs import read_image, read_images
from service.rest.responses import error_responses
from service.rest.shaping import anonymized_response, batch_response, result_response
from service.schemas import (
    AnonymizeJSONRequest,
    AnonymizeOptions,
    AnonymizeResult,
    BatchJSONRequest,
    BatchResponse,
    DetectJSONRequest,
    DetectOptions,
    HealthStatus,
    ImageResult,
    ModelList,
)

_BINARY = {"schema": {"type": "string", "format": "binary"}}


def _request(
    options_model,
    json_model,
    multipart_field: str,
    multipart_schema: dict,
    description: str,
    raw_types: tuple[str, ...] = (),
) -> dict:
    """The OpenAPI query parameters and requestBody of routes that read both themselves: the options of
    ``options_model`` from the query, and the body in several content types."""
    content = {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {multipart_field: multipart_schema},
                "required": [multipart_field],
            }
        },
        "application/json": {"schema": json_model.model_json_schema()},
        **{raw: _BINARY for raw in raw_types},
    }
    return {
        "parameters": query_parameters(options_model),
        "requestBody": {"required": True, "description": description, "content": content},
    }


# Routers under /v1 are included with the API-key check when a key is configured (see service.rest.app).
detect_router = APIRouter(prefix="/v1", tags=["detection"])


@detect_router.post(
    "/detect",
    response_model=ImageResult,
    response_model_exclude_none=True,
    summary="Detect faces in one image",
    responses=error_responses(400, 401, 408, 413, 415, 422, 503),
    openapi_extra=_request(
        DetectOptions,
        DetectJSONRequest,
        "image",
        {"type": "string", "format": "binary", "description": "the image file"},
        "The image as multipart field 'image', as a raw body (image/jpeg, image/png, image/webp, image/bmp), "
        "or as JSON {'image': '<base64>', ...options}. Options may also be query parameters; JSON fields win.",
        raw_types=tuple(MEDIA_TYPES),
    ),
)
async def detect(request: Request, core: CoreDep, options: CheckedOptions) -> JSONResponse:
    data, options = await read_image(request, options, DetectJSONRequest)
    return result_response(await core.detect(data, options))


@detect_router.post(
    "/detect/batch",
    response_model=BatchResponse,
    response_model_exclude_none=True,
    summary="Detect faces in several images",
    responses=error_responses(400, 401, 408, 413, 415, 422, 503),
    openapi_extra=_request(
        DetectOptions,
        BatchJSONRequest,
        "images",
        {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1, "description": "image files"},
        "Images as repeated multipart field 'images', or JSON {'images': ['<base64>', ...], ...options}. "
        "A bad image gets its own error entry; the others still get results.",
    ),
)
async def detect_batch(request: Request, core: CoreDep, options: CheckedOptions) -> JSONResponse:
    items, options = await read_images(request, options)
    return batch_response(await core.detect_batch(items, options))


anonymize_router = APIRouter(prefix="/v1", tags=["anonymisation"])


@anonymize_router.post(
    "/anonymize",
    summary="Blur or pixelate every face of one image",
    response_class=Response,
    responses={
        200: {
            "description": "The image with every face covered: the same size (EXIF orientation applied), in the "
            "input's format (JPEG, PNG, WebP, BMP; any other as PNG), without metadata. With return_regions=true, "
            "JSON (AnonymizeResult) with the image as base64 and each face's region.",
            "content": {
                **{media: _BINARY for media in MEDIA_TYPES},
                "application/json": {"schema": AnonymizeResult.model_json_schema()},
            },
        },
        **error_responses(400, 401, 408, 413, 415, 422, 503),
    },
    openapi_extra=_request(
        AnonymizeOptions,
        AnonymizeJSONRequest,
        "image",
        {"type": "string", "format": "binary", "description": "the image file"},
        "The image as /v1/detect takes it: multipart field 'image', a raw body, or JSON {'image': '<base64>', "
        f"...options}}. Faces are found at a high-recall preset (score_threshold {ANONYMIZE_SCORE_THRESHOLD:g}, tta "
        f"{ANONYMIZE_TTA}) and covered on an ellipse grown from the box, joined, with the mesh model, with the "
        "face oval of a confident mesh.",
        raw_types=tuple(MEDIA_TYPES),
    ),
)
async def anonymize(request: Request, core: CoreDep, options: CheckedAnonymizeOptions) -> Response:
    data, options = await read_image(request, options, AnonymizeJSONRequest)
    return anonymized_response(await core.anonymize(data, options), options.return_regions)


models_router = APIRouter(prefix="/v1", tags=["models"])


@models_router.get(
    "/models",
    response_model=ModelList,
    summary="The models being served: the detector, then the mesh model (return_mesh) when there is one",
    responses=error_responses(401),
)
async def list_models(core: CoreDep) -> ModelList:
    return ModelList(models=core.model_infos())


health_router = APIRouter(tags=["health"])


@health_router.get("/healthz", response_model=HealthStatus, summary="Liveness: the process answers")
async def healthz() -> HealthStatus:
    return HealthStatus(status="ok")


@health_router.get(
    "/readyz",
    response_model=HealthStatus,
    summary="Readiness: the warm-up inference has passed",
    responses=error_responses(503),
)
async def readyz(core: CoreDep) -> HealthStatus:
    if not await core.check_ready():
        raise unavailable("the model is not ready (warming up, or the backend is down)", code="not_ready")
    return HealthStatus(status="ready")


metrics_router = APIRouter(tags=["metrics"])


@metrics_router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
)
async def metrics(core: CoreDep) -> Response:
    return Response(core.metrics.render(), media_type=CONTENT_TYPE_LATEST)
