"""The connection to one model on a Triton server, through ``tritonclient``'s asyncio clients (gRPC or HTTP).

Every call is bounded by ``triton_timeout_s``. A request that fails on the connection (Triton down or
restarting, a registration it forgot) is retried once on a fresh connection, then answered with 503
``backend_unavailable``. After a failure the next request runs the backend's ``setup`` again (model check,
shared-memory registration), so a restarted Triton is picked up without restarting the service.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import numpy as np
from google.protobuf import json_format
from tritonclient.utils import InferenceServerException

from service.backends.triton_config import ModelConfig
from service.errors import ServiceError, unavailable
from service.settings import Settings

log = logging.getLogger(__name__)

# One quick second try covers a connection that dropped between calls; more would only delay the 503.
MAX_ATTEMPTS = 2
RETRY_DELAY_S = 0.05
# gRPC backs off reconnecting up to 2 minutes by default; a restarted Triton should be used within a second.
GRPC_CHANNEL_ARGS = [
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.max_receive_message_length", 2**31 - 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Channels otherwise share subchannels process-wide, so a new channel would inherit the old backoff.
    ("grpc.use_local_subchannel_pool", 1),
]

T = TypeVar("T")


class TransientError(Exception):
    """A failure a fresh connection may cure: Triton down or restarting, or our shm registration lost."""


async def infer_in_chunks(
    batch: np.ndarray, size: int, infer_chunk: Callable[[np.ndarray], Awaitable[tuple[np.ndarray, ...]]]
) -> tuple[np.ndarray, ...]:
    """``infer_chunk`` on ``batch[i : i + size]`` in turn (a model's ``max_batch_size``); each output concatenated
    along the batch axis."""
    if len(batch) == 0:
        raise ValueError("empty batch")
    chunks = [await infer_chunk(batch[start : start + size]) for start in range(0, len(batch), size)]
    return tuple(np.concatenate(parts) for parts in zip(*chunks, strict=True))


class TritonClient:
    """One model (``model``) on the Triton at ``settings.triton_url``.

    ``setup`` runs before the first request and again after any failure; a backend reads and checks the
    model's config there. :meth:`run` wraps a request in that setup and the retry.
    """

    def __init__(self, settings: Settings, model: str, setup: Callable[[], Awaitable[None]]) -> None:
        self.url = settings.triton_url
        self.model = model
        self._protocol = settings.triton_protocol
        self._timeout_s = settings.triton_timeout_s
        self._setup = setup
        self._setup_lock = asyncio.Lock()
        self._needs_setup = True
        # Made on first use, inside the event loop: grpc.aio channels bind to the loop that creates them,
        # and the service may build backends in a worker thread.
        self._raw: Any = None

    @property
    def raw(self) -> Any:
        """The protocol's ``InferenceServerClient``; a fresh one after :meth:`reconnect`."""
        if self._raw is None:
            if self._protocol == "http":
                import tritonclient.http.aio as http

                self._raw = http.InferenceServerClient(self.url, conn_timeout=self._timeout_s)
            else:
                import tritonclient.grpc.aio as grpc

                self._raw = grpc.InferenceServerClient(self.url, channel_args=GRPC_CHANNEL_ARGS)
        return self._raw

    @property
    def types(self) -> Any:
        """The protocol's module of request types (``InferInput``, ``InferRequestedOutput``)."""
        if self._protocol == "http":
            import tritonclient.http as module
        else:
            import tritonclient.grpc as module
        return module

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await a client call within the timeout; connection trouble becomes :class:`TransientError`, a refusal
        or a timeout a 503 ``ServiceError``."""
        try:
            return await asyncio.wait_for(coroutine, self._timeout_s)
        except TimeoutError:
            raise unavailable(f"Triton at {self.url} did not answer within {self._timeout_s:g} s") from None
        except InferenceServerException as exc:
            text = f"{exc.status()} {exc.message()}"
            if "UNAVAILABLE" in text or "shared memory" in text.lower() or "Socket closed" in text:
                raise TransientError(exc.message()) from exc
            raise unavailable(f"Triton refused the request: {exc.message()}") from exc
        except (OSError, ConnectionError) as exc:
            raise TransientError(str(exc)) from exc
        except asyncio.CancelledError:
            # A concurrent reconnect() (a failed readiness check) closed the channel under this call, and grpc.aio
            # cancels a closed channel's calls. Unless this task itself is being cancelled, that is connection
            # trouble: raised on, the cancellation would end the batcher's worker and hang every later request.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise TransientError("the Triton channel was closed during the call") from None
        except Exception as exc:  # aiohttp's client errors, without importing aiohttp for gRPC users
            if type(exc).__module__.startswith("aiohttp"):
                raise TransientError(f"{type(exc).__name__}: {exc}") from exc
            if type(exc).__name__ == "UsageError":  # grpc.aio: a call on a channel reconnect() has closed
                raise TransientError(str(exc)) from exc
            raise

    async def model_config(self) -> ModelConfig:
        """The model's config as Triton serves it; :class:`TransientError` while the model is not ready."""
        if not await self.call(self.raw.is_model_ready(self.model)):
            raise TransientError(f"model {self.model!r} is not ready on Triton")
        if self._protocol == "http":
            return json_format.ParseDict(
                await self.call(self.raw.get_model_config(self.model)), ModelConfig(), ignore_unknown_fields=True
            )
        return (await self.call(self.raw.get_model_config(self.model))).config

    async def infer(self, inputs: list[Any], outputs: list[Any]) -> Any:
        """One inference request on the model; the protocol's result object."""
        return await self.call(self.raw.infer(self.model, inputs, outputs=outputs))

    async def infer_wire(
        self, input_name: str, batch: np.ndarray, output_names: Sequence[str]
    ) -> tuple[np.ndarray, ...]:
        """``batch`` (uint8, any shape) sent in the request; the named outputs, in that order, from the response."""
        tensor = self.types.InferInput(input_name, list(batch.shape), "UINT8")
        tensor.set_data_from_numpy(np.ascontiguousarray(batch, np.uint8))
        result = await self.infer(inputs=[tensor], outputs=[self.types.InferRequestedOutput(n) for n in output_names])
        return tuple(result.as_numpy(name) for name in output_names)

    def invalidate(self) -> None:
        """Run ``setup`` again before the next request."""
        self._needs_setup = True

    async def run(self, request: Callable[[], Awaitable[T]]) -> T:
        """``request()`` after the setup, retried once on a fresh connection; 503 when both attempts fail."""
        deadline = time.monotonic() + self._timeout_s
        last_error: Exception | None = None
        for attempt in range(MAX_ATTEMPTS):
            try:
                await self._ensure_setup()
                return await request()
            except TransientError as exc:
                self.invalidate()
                last_error = exc
                await self.reconnect()
                if attempt + 1 == MAX_ATTEMPTS or time.monotonic() + RETRY_DELAY_S >= deadline:
                    break
                await asyncio.sleep(RETRY_DELAY_S)
        raise unavailable(f"Triton at {self.url} is unavailable: {last_error}")

    async def _ensure_setup(self) -> None:
        if not self._needs_setup:
            return
        async with self._setup_lock:
            if self._needs_setup:
                await self._setup()
                self._needs_setup = False

    async def reconnect(self) -> None:
        """Replace the client: a fresh gRPC channel connects at once instead of waiting out its backoff."""
        stale, self._raw = self._raw, None
        if stale is None:
            return
        try:
            await stale.close()
        except Exception as exc:  # closing a broken connection may fail in protocol-specific ways
            log.debug("closing the stale Triton client failed: %s", exc)

    async def ready(self) -> bool:
        """True only when Triton answers and reports the model ready."""
        try:
            return bool(await self.call(self.raw.is_model_ready(self.model)))
        except (ServiceError, TransientError):
            self.invalidate()
            await self.reconnect()
            return False

    async def close(self) -> None:
        if self._raw is not None:
            await self._raw.close()
            self._raw = None
