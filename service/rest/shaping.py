"""REST's edge: a :class:`~service.results.DetectionResult` to the JSON of :class:`~service.schemas.ImageResult`,
once, straight from the arrays.

The routes return the JSON themselves (``JSONResponse``), so FastAPI does not validate the answer through the
pydantic models again (a mesh is 1,404 numbers a face); the models still document every field in the OpenAPI
schema. Fields a request did not ask for are left out, not sent as ``null``: ``landmarks`` without
``return_landmarks``, ``crop`` without ``return_crops``, ``mesh``/``mesh_score`` on a face without a mesh,
``mesh_skipped`` on a face with one, ``mesh_truncated`` and ``timings_ms.mesh`` without ``return_mesh``, ``pose``
without ``return_pose`` or on a face without one, ``quality`` without ``return_quality`` (and its
``frontalness`` on a face without a pose).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import orjson
from fastapi.responses import JSONResponse, Response

from service.errors import ServiceError
from service.results import AnonymizedResult, DetectionResult
from service.schemas import ErrorBody, ErrorResponse


def result_json(result: DetectionResult) -> dict:
    """The ``ImageResult`` JSON object of one image."""
    faces = result.faces.faces(landmarks=result.landmarks)
    if result.crops is not None:
        for face, crop in zip(faces, result.crops, strict=True):
            face["crop"] = base64.b64encode(crop).decode("ascii")
    if result.mesh_skipped is not None:
        for face, reason in zip(faces, result.mesh_skipped, strict=True):
            if reason is not None:
                face["mesh_skipped"] = reason
    if result.landmark_sources is not None:
        for face, source in zip(faces, result.landmark_sources, strict=True):
            face["landmarks_source"] = source
    for face, pose in zip(faces, result.pose_dicts(), strict=False):
        if pose is not None:
            face["pose"] = pose
    for face, quality in zip(faces, result.quality_dicts(), strict=False):
        face["quality"] = quality
    body = {
        "width": result.width,
        "height": result.height,
        "model": result.model,
        "faces": faces,
        "truncated": result.truncated,
        "timings_ms": result.timings.model_dump(exclude_none=True),
    }
    if result.mesh_truncated is not None:
        body["mesh_truncated"] = result.mesh_truncated
    return body


def error_json(error: ServiceError) -> dict:
    """The ``ErrorResponse`` JSON object of one image's error."""
    return ErrorResponse(error=ErrorBody(code=error.code, message=error.message)).model_dump()


class FastJSONResponse(JSONResponse):
    """JSON written by orjson: a mesh's 1,404 numbers a face in a tenth of the standard library's time."""

    def render(self, content) -> bytes:
        return orjson.dumps(content)


def result_response(result: DetectionResult) -> JSONResponse:
    return FastJSONResponse(result_json(result))


def batch_response(outcomes: Sequence[DetectionResult | ServiceError]) -> JSONResponse:
    """``BatchResponse``: per image its result or its own error, in input order."""
    return FastJSONResponse(
        {
            "results": [
                error_json(outcome) if isinstance(outcome, ServiceError) else result_json(outcome)
                for outcome in outcomes
            ]
        }
    )


def anonymized_response(result: AnonymizedResult, return_regions: bool) -> Response:
    """The covered image itself, in the input's format, or with ``return_regions`` the ``AnonymizeResult``
    JSON (the image as base64, and each face's region)."""
    if not return_regions:
        return Response(result.image, media_type=result.media_type)
    return FastJSONResponse(
        {
            "width": result.faces.width,
            "height": result.faces.height,
            "media_type": result.media_type,
            "image": base64.b64encode(result.image).decode("ascii"),
            "regions": result.region_dicts(),
            "truncated": result.truncated,
        }
    )
