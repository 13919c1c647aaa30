"""Connections before a request: a deadline for the request head, and a cap on open connections, over raw sockets
on loopback (every wait bounded)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from service.rest.connections import HEADER_TOO_LARGE, MAX_HEAD_BYTES
from tests.service.helpers import client, vga_jpeg

HEADER_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 6
# How long a test waits for the server to act, well past HEADER_TIMEOUT_S.
WAIT_S = 15.0


@pytest.fixture(scope="module")
def guarded(start_service):
    running = start_service(header_timeout_s=HEADER_TIMEOUT_S, max_connections=MAX_CONNECTIONS)
    yield running
    running.stop()


def connect(running) -> socket.socket:
    host, port = running.http_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=WAIT_S)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a timeout fails the test)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def status_and_error(response: bytes) -> tuple[int, dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)["error"]


def test_a_connection_that_sends_nothing_is_closed_with_408(guarded) -> None:
    with connect(guarded) as sock:
        started = time.monotonic()
        response = read_until_closed(sock)
        waited = time.monotonic() - started
    status, error = status_and_error(response)
    assert (status, error["code"]) == (408, "header_timeout")
    assert HEADER_TIMEOUT_S * 0.9 <= waited < WAIT_S


def test_a_trickled_head_is_cut_off_at_the_deadline(guarded) -> None:
    head = b"POST /v1/detect HTTP/1.1\r\nhost: x\r\ncontent-type: image/jpeg\r\n" + b"x-pad: a\r\n" * 40
    with connect(guarded) as sock:
        started = time.monotonic()
        sent = 0
        try:
            # A byte every 50 ms: each arrives long before any per-read timeout would fire.
            while sent < len(head) and time.monotonic() - started < WAIT_S:
                sock.sendall(head[sent : sent + 1])
                sent += 1
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = read_until_closed(sock)
    assert sent < len(head), "the server waited for the whole trickled head"
    assert status_and_error(response)[1]["code"] == "header_timeout"


def test_an_overlong_head_is_refused_with_431_at_once(guarded) -> None:
    head = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-pad: " + b"a" * (MAX_HEAD_BYTES + 1024)
    with connect(guarded) as sock:
        started = time.monotonic()
        try:
            sock.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = read_until_closed(sock)
    assert status_and_error(response) == (431, status_and_error(HEADER_TOO_LARGE)[1])
    assert time.monotonic() - started < HEADER_TIMEOUT_S, "refused as it arrived, not at the deadline"


def test_a_large_head_under_the_limit_is_served(guarded) -> None:
    head = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-pad: " + b"a" * (MAX_HEAD_BYTES // 2) + b"\r\n\r\n"
    with connect(guarded) as sock:
        sock.sendall(head)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_the_deadline_applies_again_after_a_response_on_a_kept_alive_connection(guarded) -> None:
    with connect(guarded) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")  # never finished
        response = read_until_closed(sock)
    # The keep-alive timer (5 s) would close silently; the head deadline answers first.
    assert status_and_error(response)[1]["code"] == "header_timeout"


def test_a_pipelined_request_is_not_cut_off_by_the_deadline_of_the_next_head(guarded) -> None:
    # The second request's head is in before the first is answered; its body then comes later than the head
    # deadline. The deadline is for heads only: both requests get their faces.
    jpeg = vga_jpeg()
    head = b"POST /v1/detect HTTP/1.1\r\nhost: x\r\ncontent-type: image/jpeg\r\ncontent-length: %d\r\n\r\n" % len(jpeg)
    half = len(jpeg) // 2
    with connect(guarded) as sock:
        sock.sendall(head + jpeg + head + jpeg[:half])
        time.sleep(HEADER_TIMEOUT_S * 1.5)
        sock.sendall(jpeg[half:])
        received = b""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and not (received.count(b"HTTP/1.1 ") >= 2 and received.endswith(b"}")):
            received += sock.recv(65536)
    statuses = [int(part.split(b" ")[0]) for part in received.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [200, 200], received[:300]


def test_past_max_connections_a_new_connection_gets_503_and_a_freed_slot_serves_again(guarded) -> None:
    idle = [connect(guarded) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)  # the server has accepted them all
        with connect(guarded) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            response = read_until_closed(extra)
        status, error = status_and_error(response)
        assert (status, error["code"]) == (503, "too_many_connections")
        assert b"retry-after: 1" in response.lower()
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + WAIT_S
    with client(guarded.http_url) as http:
        while (answer := http.get("/healthz")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert answer.status_code == 200


def test_ordinary_requests_are_unaffected(guarded) -> None:
    with client(guarded.http_url) as http:
        for _ in range(3):
            assert http.get("/healthz").status_code == 200
            time.sleep(HEADER_TIMEOUT_S * 0.6)  # idle between requests, under both deadlines
        assert http.get("/readyz").status_code == 200
