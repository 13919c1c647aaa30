"""OpenAPI descriptions of the error responses, shared by the routes."""

from __future__ import annotations

from service.schemas import ErrorResponse

_ERROR_DESCRIPTIONS = {
    400: "Bad input: empty, corrupt, truncated or zero-size image, invalid base64 or JSON, a multipart body that "
    "does not parse or has over 1,000 parts (codes: empty_image, corrupt_image, invalid_image, invalid_base64, "
    "invalid_json, invalid_multipart, missing_image)",
    401: "An API key is configured and the bearer token is missing or wrong (code: unauthorized)",
    408: "The body did not arrive within body_timeout_s (body_timeout), or the request head within header_timeout_s "
    "(header_timeout); the connection is closed",
    413: "Body over max_body_bytes (payload_too_large) or image over max_pixels (image_too_large)",
    415: "Content type not accepted, or declared type does not match the bytes "
    "(unsupported_media_type, content_type_mismatch, unsupported_format)",
    422: "Invalid option values, more images than max_batch_images in one batch, or return_mesh when no mesh is "
    "served (validation_error, too_many_images, mesh_unavailable)",
    503: "At capacity: images in flight or decoded pixels over their limits (queue_full, with Retry-After); model "
    "warming up (not_ready), backend down (backend_unavailable), or the server shutting down while the body "
    "was still arriving (shutting_down), or more than max_connections open connections (too_many_connections, with "
    "Retry-After)",
}


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """``responses=`` for a route: each status with the error model and what it means."""
    return {status: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[status]} for status in statuses}
