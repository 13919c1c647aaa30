"""HTTP connections before the application sees them: a deadline for each request head, and a cap on connections.

uvicorn waits for a request head for ever, and a client that sends nothing, or trickles its headers, holds a
file descriptor for as long as it likes; the API key cannot help, as it is read from the head. Here every head must
be complete ``header_timeout_s`` after the connection opened (or after the previous response on a keep-alive
connection), else the client gets 408 ``header_timeout`` and the connection is closed. Past ``max_connections``
open connections, a new one is answered 503 ``too_many_connections`` (``Retry-After``) as soon as its head is
in, and closed; it too must send its head in time. A head that grows past ``MAX_HEAD_BYTES`` before it is complete
gets 431 ``header_too_large`` and the connection is closed: httptools itself sets no bound on the request line and
headers it collects (h11 stopped at 16 KiB).

The protocol is uvicorn's httptools one (the C parser of Node's llhttp): against its pure-Python h11 protocol it
takes about 0.7 ms less of the event loop's CPU per request (README, "Speed").
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.core import only_client
from service.errors import ServiceError


def _raw_response(error: ServiceError, extra: dict[str, str]) -> bytes:
    """``error`` as a complete HTTP/1.1 response that closes the connection, for writing straight to a socket."""
    body = json.dumps(error.to_dict()).encode()
    headers = {"content-type": "application/json", "content-length": str(len(body)), "connection": "close", **extra}
    head = f"HTTP/1.1 {error.http_status} \r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return head.encode("latin-1") + b"\r\n" + body


HEADER_TIMEOUT = _raw_response(ServiceError(408, "header_timeout", "the request head did not arrive in time"), {})
# Browsers' heads, cookies included, stay under 16 KiB; common servers stop at 8-32 KiB.
MAX_HEAD_BYTES = 32 * 1024
HEADER_TOO_LARGE = _raw_response(
    ServiceError(431, "header_too_large", f"the request line and headers exceed {MAX_HEAD_BYTES} bytes"), {}
)
TOO_MANY_CONNECTIONS = ServiceError(
    503, "too_many_connections", "the server has too many open connections; retry shortly", retry_after_s=1
)


async def _too_many_connections(scope, receive, send) -> None:
    """The application an over-the-cap connection gets: 503 and close, whatever it asked for."""
    body = json.dumps(TOO_MANY_CONNECTIONS.to_dict()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(TOO_MANY_CONNECTIONS.retry_after_s).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the head deadline and the connection cap (pass it as
    ``Config(http=...)``)."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _head_deadline: asyncio.TimerHandle | None = None
        # Bytes received since the last head was complete, counted while no body is arriving (a body may go on
        # after its request was answered, e.g. a 422 sent before the upload ended).
        _head_bytes = 0
        _in_body = False

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                self.app = _too_many_connections
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._head_arrived()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self._in_body:
                self._head_bytes += len(data)
            super().data_received(data)
            # A head completed in this data resets the count; one still incomplete must not grow past the bound.
            if not self._in_body and self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(HEADER_TOO_LARGE)

        def on_headers_complete(self) -> None:
            self._head_arrived()
            self._head_bytes = 0
            self._in_body = True
            # The request's task, started below, copies this context.
            only_client.set(len(self.connections) == 1)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_body = False
            super().on_message_complete()

        def on_response_complete(self) -> None:
            # A pipelined request whose head is already in is started by the call below; otherwise the next head
            # on this keep-alive connection has its deadline from now.
            if not self.transport.is_closing() and not self.pipeline:
                self._await_head()
            super().on_response_complete()

        def _await_head(self) -> None:
            self._head_arrived()
            self._head_deadline = self.loop.call_later(header_timeout_s, self._head_timed_out)

        def _head_arrived(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_timed_out(self) -> None:
            self._refuse(HEADER_TIMEOUT)

        def _refuse(self, response: bytes) -> None:
            self._head_arrived()
            if not self.transport.is_closing():
                self.transport.write(response)
                self.transport.close()

    return GuardedHttpToolsProtocol
