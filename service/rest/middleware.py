"""ASGI middleware: limits on request bodies (size, time, shutdown) and per-request metrics."""

from __future__ import annotations

import asyncio
import json
import time

from service.errors import payload_too_large, request_timeout, unavailable
from service.metrics import ServiceMetrics, record_request


class BodyReads:
    """Deadlines of the request bodies being read; :meth:`stop` (at shutdown) brings them all forward to now."""

    def __init__(self) -> None:
        self.stopping = False
        self._pending: set[asyncio.Timeout] = set()

    def stop(self) -> None:
        """Fail every body still arriving, and every later one, with 503 ``shutting_down``.

        Otherwise a stalled upload would hold shutdown for the whole grace period and then be cut off with
        uvicorn's plain-text 500.
        """
        self.stopping = True
        now = asyncio.get_running_loop().time()
        for deadline in list(self._pending):
            deadline.reschedule(now)

    async def receive(self, receive, deadline: float):
        """``receive()`` by ``deadline`` (event-loop time): 408 ``body_timeout`` after it, 503 at shutdown."""
        if not self.stopping:
            try:
                async with asyncio.timeout_at(deadline) as timeout:
                    self._pending.add(timeout)
                    try:
                        return await receive()
                    finally:
                        self._pending.discard(timeout)
            except TimeoutError:
                if not self.stopping:
                    raise request_timeout("the request body did not arrive in time") from None
        raise unavailable("the server is shutting down; send the request again", code="shutting_down")


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413: by ``Content-Length`` before reading, and while streaming
    (chunked uploads or a lying header) by counting what arrives. Bodies still arriving ``timeout_s`` after
    the request started get 408, and at shutdown 503 (see :class:`BodyReads`)."""

    def __init__(self, app, max_bytes: int, timeout_s: float, reads: BodyReads) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.reads = reads

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            error = payload_too_large(f"the body is {int(declared)} bytes; the limit is {self.max_bytes}")
            return await _send_json(send, error.http_status, error.to_dict())
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        received = 0
        complete = False

        async def limited_receive():
            nonlocal received, complete
            if complete:
                # The body is in; later calls only wait for a disconnect, which has no deadline.
                return await receive()
            # Raised inside the route, so the app's ServiceError handler answers 408, 413 or 503.
            message = await self.reads.receive(receive, deadline)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise payload_too_large(f"the body exceeds the limit of {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)


class MetricsMiddleware:
    """Count every HTTP request by route template and status, and observe its latency."""

    def __init__(self, app, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def recording_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            # Route templates, not raw paths, keep the label set bounded.
            endpoint = getattr(route, "path", "unmatched")
            record_request(self.metrics, "rest", endpoint, status, time.perf_counter() - started)


async def _send_json(send, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
