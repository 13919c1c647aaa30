"""A gRPC call cancelled under the Triton client (a concurrent readiness check reconnected and closed the shared
channel) is connection trouble, while a cancellation of the caller itself still cancels: tests/compose found the
first one ending the batcher's worker, after which every request hung."""

from __future__ import annotations

import asyncio

import pytest

from service.backends.triton_client import TransientError, TritonClient
from service.settings import Settings


async def cancelled_by_the_channel() -> None:
    raise asyncio.CancelledError  # what grpc.aio raises in a call whose channel was closed


async def noop_setup() -> None:
    return None


def client() -> TritonClient:
    return TritonClient(Settings(backend="triton", triton_url="127.0.0.1:1"), "retinaface", setup=noop_setup)


def test_a_call_cancelled_by_a_closed_channel_is_transient():
    with pytest.raises(TransientError, match="closed during the call"):
        asyncio.run(client().call(cancelled_by_the_channel()))


def test_cancelling_the_caller_still_cancels():
    async def main() -> None:
        started = asyncio.Event()

        async def slow() -> None:
            started.set()
            await asyncio.sleep(30)

        task = asyncio.create_task(client().call(slow()))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
