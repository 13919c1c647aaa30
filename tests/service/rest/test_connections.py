"""service/rest/connections.py: the raw answers it writes are well-formed HTTP with the documented JSON errors
(the deadlines and the cap themselves are tested over sockets in tests/service/test_connections.py)."""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.rest.connections import HEADER_TIMEOUT, HEADER_TOO_LARGE, _too_many_connections, guarded_protocol


def parse(response: bytes) -> tuple[h11.Response, dict]:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(response)
    head, data = client.next_event(), client.next_event()
    return head, json.loads(data.data)


def test_the_header_timeout_answer_is_a_closing_408() -> None:
    head, body = parse(HEADER_TIMEOUT)
    assert head.status_code == 408 and (b"connection", b"close") in head.headers
    assert body["error"]["code"] == "header_timeout"


def test_the_header_too_large_answer_is_a_closing_431() -> None:
    head, body = parse(HEADER_TOO_LARGE)
    assert head.status_code == 431 and (b"connection", b"close") in head.headers
    assert body["error"]["code"] == "header_too_large"


def test_the_over_the_cap_app_answers_503_and_closes() -> None:
    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    asyncio.run(_too_many_connections({"type": "http"}, None, send))
    headers = dict(sent[0]["headers"])
    assert sent[0]["status"] == 503 and headers[b"connection"] == b"close" and headers[b"retry-after"] == b"1"
    assert json.loads(sent[1]["body"])["error"]["code"] == "too_many_connections"


def test_the_protocol_is_uvicorns_httptools_protocol() -> None:
    assert issubclass(guarded_protocol(10.0, 512), HttpToolsProtocol)
