"""service/rest/middleware.py over a bare ASGI app: the body limit, the body budget and its release."""

from __future__ import annotations

import asyncio
import json

from service.budget import Budget
from service.memory import IdleTrim
from service.rest.middleware import BodyLimitMiddleware, BodyReads


async def reading_app(scope, receive, send) -> None:
    """Reads the whole body, then answers 200 with its length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def call(middleware, body: bytes, declared: int | None) -> tuple[int, dict, bytes]:
    """One request through ``middleware``: status, headers and body of the answer."""
    headers = [] if declared is None else [(b"content-length", str(declared).encode())]
    scope = {"type": "http", "headers": headers}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    start, content = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, content


def make(max_bytes: int, budget: int) -> tuple[BodyLimitMiddleware, Budget]:
    bodies = Budget(budget)
    return BodyLimitMiddleware(reading_app, max_bytes, 5.0, BodyReads(), bodies, IdleTrim(delay_s=60)), bodies


def test_a_declared_body_over_the_limit_is_413_before_reading() -> None:
    middleware, bodies = make(max_bytes=10, budget=100)
    status, _, content = call(middleware, b"x" * 11, declared=11)
    assert status == 413 and json.loads(content)["error"]["code"] == "payload_too_large"
    assert bodies.used == 0


def test_a_body_that_does_not_fit_the_budget_is_503_with_retry_after() -> None:
    middleware, bodies = make(max_bytes=10, budget=15)
    held = bodies.hold()
    held.take(10)  # another request's body
    status, headers, content = call(middleware, b"x" * 8, declared=8)
    assert status == 503 and headers["retry-after"] == "1"
    assert json.loads(content)["error"]["code"] == "queue_full"
    held.release()
    assert call(middleware, b"x" * 8, declared=8)[0] == 200


def test_the_budget_is_given_back_when_the_request_ends() -> None:
    middleware, bodies = make(max_bytes=10, budget=10)
    assert call(middleware, b"x" * 10, declared=10)[:1] == (200,)
    assert call(middleware, b"x" * 10, declared=None)[2] == b"10"  # no Content-Length: counted as it arrives
    assert bodies.used == 0
