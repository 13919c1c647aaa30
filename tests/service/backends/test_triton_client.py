"""service/backends/triton_client.py without a Triton server: chunking, how failures are classified, and the
retry on a fresh connection (the live behaviour is in tests/triton/)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from service.backends.triton_client import TransientError, TritonClient, infer_in_chunks
from service.errors import ServiceError
from service.settings import Settings


class FakeRaw:
    """Stands in for a tritonclient ``InferenceServerClient``: only what the client closes."""

    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


def make_client(setups: list[int] | None = None, timeout_s: float = 0.5) -> TritonClient:
    calls = setups if setups is not None else []

    async def setup() -> None:
        calls.append(1)

    client = TritonClient(Settings(triton_timeout_s=timeout_s), "retinaface", setup)
    client._raw = FakeRaw()
    return client


def test_infer_in_chunks_splits_by_the_models_batch_and_concatenates_in_order() -> None:
    seen: list[int] = []

    async def infer(chunk: np.ndarray):
        seen.append(len(chunk))
        return chunk * 2, chunk[:, :1]

    batch = np.arange(10 * 3).reshape(10, 3)
    doubled, first = asyncio.run(infer_in_chunks(batch, 4, infer))
    assert seen == [4, 4, 2]
    np.testing.assert_array_equal(doubled, batch * 2)
    np.testing.assert_array_equal(first, batch[:, :1])
    with pytest.raises(ValueError):
        asyncio.run(infer_in_chunks(batch[:0], 4, infer))


@pytest.mark.parametrize(
    ("failure", "transient"),
    [
        (InferenceServerException("connect failed", status="StatusCode.UNAVAILABLE"), True),
        (InferenceServerException("shared memory region not found"), True),
        (ConnectionResetError("reset"), True),
        (InferenceServerException("unexpected shape", status="StatusCode.INVALID_ARGUMENT"), False),
    ],
)
def test_call_tells_connection_trouble_from_a_refusal(failure: Exception, transient: bool) -> None:
    async def failing():
        raise failure

    client = make_client()
    with pytest.raises(TransientError if transient else ServiceError) as caught:
        asyncio.run(client.call(failing()))
    if not transient:
        assert (caught.value.http_status, caught.value.code) == (503, "backend_unavailable")


def test_a_call_past_the_timeout_is_503() -> None:
    client = make_client(timeout_s=0.05)
    with pytest.raises(ServiceError) as caught:
        asyncio.run(client.call(asyncio.sleep(1)))
    assert caught.value.code == "backend_unavailable" and "did not answer" in caught.value.message


def test_run_retries_once_on_a_fresh_connection_after_setting_up_again() -> None:
    setups: list[int] = []
    client = make_client(setups)
    first_raw = client._raw
    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise TransientError("Triton restarted")
        return "ok"

    assert asyncio.run(client.run(flaky)) == "ok"
    assert len(attempts) == 2 and len(setups) == 2  # the setup ran again before the second attempt
    assert first_raw.closed and client._raw is None  # the stale connection was closed and dropped


def test_run_answers_503_when_both_attempts_fail() -> None:
    client = make_client()

    async def down() -> str:
        raise TransientError("connection refused")

    with pytest.raises(ServiceError) as caught:
        asyncio.run(client.run(down))
    assert caught.value.code == "backend_unavailable" and "connection refused" in caught.value.message
