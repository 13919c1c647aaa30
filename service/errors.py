"""Service errors: one exception type that both front ends map to their status codes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from facelocal.imageio import ImageDecodeError

# Decoder codes whose HTTP status is not 400.
_DECODE_STATUS = {"image_too_large": 413, "unsupported_format": 415}


class ServiceError(Exception):
    """A failure a client should see: ``{"error": {"code", "message"}}`` with ``http_status`` (gRPC's status
    comes from :func:`service.grpc.status.grpc_status`).

    ``retry_after_s`` is sent as ``Retry-After`` by REST when set (queue full).
    """

    def __init__(
        self,
        http_status: int,
        code: str,
        message: str,
        *,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}

    def __repr__(self) -> str:
        return f"ServiceError({self.http_status}, {self.code!r}, {self.message!r})"


def bad_request(code: str, message: str) -> ServiceError:
    return ServiceError(400, code, message)


def unauthorized(message: str = "missing or invalid API key; send 'Authorization: Bearer <key>'") -> ServiceError:
    return ServiceError(401, "unauthorized", message)


def payload_too_large(message: str, code: str = "payload_too_large") -> ServiceError:
    return ServiceError(413, code, message)


def unsupported_media_type(message: str, code: str = "unsupported_media_type") -> ServiceError:
    return ServiceError(415, code, message)


def validation_error(message: str, code: str = "validation_error") -> ServiceError:
    return ServiceError(422, code, message)


def format_validation_errors(errors: Sequence[Mapping]) -> str:
    """Pydantic/FastAPI error lists as one readable line, ``field: problem; ...``, for both front ends."""
    parts = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query"))
        parts.append(f"{location or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def request_timeout(message: str) -> ServiceError:
    return ServiceError(408, "body_timeout", message)


def queue_full(retry_after_s: int = 1) -> ServiceError:
    return ServiceError(
        503,
        "queue_full",
        "the server is at capacity; retry shortly",
        retry_after_s=retry_after_s,
    )


def unavailable(message: str, code: str = "backend_unavailable") -> ServiceError:
    return ServiceError(503, code, message)


def internal_error() -> ServiceError:
    """A bug on our side: the client learns no more than that (the details go to the log)."""
    return ServiceError(500, "internal_error", "internal server error")


def from_decode_error(exc: ImageDecodeError) -> ServiceError:
    """Map a decoder failure to 400, or 413 (too many pixels) / 415 (format we do not decode)."""
    return ServiceError(_DECODE_STATUS.get(exc.code, 400), exc.code, exc.message)
