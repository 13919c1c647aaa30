"""The gRPC side of :class:`~service.errors.ServiceError`: which status code each error travels with.

The core raises transport-free errors (an HTTP status and a machine-readable code); this table is gRPC's reading
of them, so a client's retry logic can tell a full queue (retry later) from a bad request (never retry).
"""

from __future__ import annotations

import grpc

from service.errors import ServiceError

_BY_CODE = {"queue_full": grpc.StatusCode.RESOURCE_EXHAUSTED}
_BY_HTTP_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
}


def grpc_status(error: ServiceError) -> grpc.StatusCode:
    """The status ``error`` is answered with over gRPC (INTERNAL for anything unexpected)."""
    return _BY_CODE.get(error.code) or _BY_HTTP_STATUS.get(error.http_status, grpc.StatusCode.INTERNAL)
