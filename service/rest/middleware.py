"""ASGI middleware: limits on request bodies (size, time, shutdown) and per-request metrics."""

from __future__ import annotations

import asyncio
import json
import time

from service.budget import Budget
from service.errors import ServiceError, payload_too_large, request_timeout, unavailable
from service.memory import IdleTrim
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
    the request started get 408, and at shutdown 503 (see :class:`BodyReads`).

    Every body is held in ``bodies`` until its request is answered (by ``Content-Length`` before reading, else as
    it arrives): past the budget, 503 ``queue_full``. When no body is held, ``trim`` hears that the REST side is
    idle."""

    def __init__(self, app, max_bytes: int, timeout_s: float, reads: BodyReads, bodies: Budget, trim: IdleTrim) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.reads = reads
        self.bodies = bodies
        self.trim = trim

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.trim.busy()
        hold = self.bodies.hold()
        try:
            await self._limited(scope, receive, send, hold)
        finally:
            hold.release()
            if self.bodies.used == 0:
                self.trim.idle()

    async def _limited(self, scope, receive, send, hold) -> None:
        declared = dict(scope["headers"]).get(b"content-length")
        length = int(declared) if declared is not None and declared.isdigit() else None
        try:
            if length is not None and length > self.max_bytes:
                raise payload_too_large(f"the body is {length} bytes; the limit is {self.max_bytes}")
            hold.take(length or 0)
        except ServiceError as error:
            return await _send_json(send, error)
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
                chunk = len(message.get("body", b""))
                received += chunk
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise payload_too_large(f"the body exceeds the limit of {self.max_bytes} bytes")
                if received > hold.units:  # no Content-Length (chunked), or one that understated the body
                    hold.take(received - hold.units)
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


async def _send_json(send, error: ServiceError) -> None:
    payload = json.dumps(error.to_dict()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if error.retry_after_s is not None:
        headers.append((b"retry-after", str(error.retry_after_s).encode()))
    await send({"type": "http.response.start", "status": error.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
