"""NVIDIA Triton Inference Server backend, through ``tritonclient``'s asyncio clients (gRPC or HTTP).

Tensors travel through system shared memory when the service and Triton share a host: the URL's host
must resolve to a loopback address, and a probe must pass (a region created here is registered with
Triton, which opens it by its key; Triton reports it back). Otherwise, or when that fails, they travel
in the request itself. Every call is bounded by ``triton_timeout_s``; connection failures are retried
once on a fresh connection, then answered with 503 ``backend_unavailable``. After a failure the next
call sets the connection up again (model check, shared-memory registration), so a restarted Triton is
picked up without restarting the service.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import mmap
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from google.protobuf import json_format
from tritonclient.utils import InferenceServerException

from facelocal.contract import INPUT_DTYPE, INPUT_NAME, OUTPUT_NAMES
from service.backends.triton_config import ModelConfig, compact_model_shape
from service.errors import ServiceError, unavailable
from service.settings import Settings

log = logging.getLogger(__name__)

SHM_ROOT = Path("/dev/shm")
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


class _TransientError(Exception):
    """A failure a fresh connection may cure: Triton down or restarting, or our shm registration lost."""


@dataclass
class _SharedRegion:
    """A POSIX shared-memory region (a file under /dev/shm) mapped here and registered with Triton.

    Layout: the input batch ``(B, 3, S, S)`` (uint8 or float32) first, then each output for ``B`` images.
    """

    name: str
    path: Path
    buffer: mmap.mmap

    @classmethod
    def create(cls, name: str, size: int) -> _SharedRegion:
        path = SHM_ROOT / name
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, size)
            buffer = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        return cls(name, path, buffer)

    @property
    def key(self) -> str:
        return "/" + self.name  # shm_open's name for /dev/shm/<name>

    @property
    def size(self) -> int:
        return len(self.buffer)

    def array(self, offset: int, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        return np.ndarray(shape, dtype, buffer=self.buffer, offset=offset)

    def close(self) -> None:
        self.buffer.close()
        self.path.unlink(missing_ok=True)


def resolves_to_loopback(url: str) -> bool:
    """Whether every address the ``host:port`` URL's host resolves to is a loopback address."""
    host = url.rsplit(":", 1)[0].strip("[]") if ":" in url else url
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses)


class TritonBackend:
    """The decoded RetinaFace served by Triton (``model_repository/retinaface`` or ``retinaface_trt``).

    ``fixed_canvas`` is ``settings.canvas_size`` until Triton's model config is read (first call); a
    model whose canvas differs is refused then. Batches larger than the model's ``max_batch_size``
    are sent in chunks.
    """

    name = "triton"

    def __init__(self, settings: Settings) -> None:
        self._url = settings.triton_url
        self._protocol = settings.triton_protocol
        self._model = settings.triton_model
        self._timeout_s = settings.triton_timeout_s
        self._shm_mode = settings.triton_shared_memory
        self._explicit_name = settings.model_name
        self._max_batch_size = settings.max_batch_size
        self.model_name = settings.model_name or settings.triton_model
        self.has_dense = False
        self.fixed_canvas: int | None = settings.canvas_size
        self._top_k = 0
        self._model_batch = settings.max_batch_size
        # Made on first use, inside the event loop: grpc.aio channels bind to the loop that creates them,
        # and the service may build backends in a worker thread.
        self._client_instance = None
        self._setup_lock = asyncio.Lock()
        self._needs_setup = True
        self._region: _SharedRegion | None = None
        self._region_lock = asyncio.Lock()
        self._instance = uuid.uuid4().hex[:12]
        self._generation = 0
        self._stale_regions: list[str] = []

    @property
    def uses_shared_memory(self) -> bool:
        return self._region is not None

    @property
    def _client(self):
        if self._client_instance is None:
            self._client_instance = self._make_client()
        return self._client_instance

    def _make_client(self):
        if self._protocol == "http":
            import tritonclient.http.aio as http

            return http.InferenceServerClient(self._url, conn_timeout=self._timeout_s)
        import tritonclient.grpc.aio as grpc

        return grpc.InferenceServerClient(self._url, channel_args=GRPC_CHANNEL_ARGS)

    @property
    def _types(self):
        if self._protocol == "http":
            import tritonclient.http as module
        else:
            import tritonclient.grpc as module
        return module

    # -- setup ---------------------------------------------------------------------------------------

    async def _call(self, coroutine):
        """Await a client call within the timeout; connection trouble becomes :class:`_TransientError`."""
        try:
            return await asyncio.wait_for(coroutine, self._timeout_s)
        except TimeoutError:
            raise unavailable(f"Triton at {self._url} did not answer within {self._timeout_s:g} s") from None
        except InferenceServerException as exc:
            text = f"{exc.status()} {exc.message()}"
            if "UNAVAILABLE" in text or "shared memory" in text.lower() or "Socket closed" in text:
                raise _TransientError(exc.message()) from exc
            raise unavailable(f"Triton refused the request: {exc.message()}") from exc
        except (OSError, ConnectionError) as exc:
            raise _TransientError(str(exc)) from exc
        except Exception as exc:  # aiohttp's client errors, without importing aiohttp for gRPC users
            if type(exc).__module__.startswith("aiohttp"):
                raise _TransientError(f"{type(exc).__name__}: {exc}") from exc
            raise

    async def _setup(self) -> None:
        """Read and check the model config, then (re)register shared memory if it is to be used."""
        async with self._setup_lock:
            if not self._needs_setup:
                return
            config = await self._model_config()
            shape = compact_model_shape(config)
            if shape.canvas != self.fixed_canvas:
                raise unavailable(
                    f"Triton model {self._model!r} takes a {shape.canvas}px canvas, the service sends "
                    f"{self.fixed_canvas}px (set FACELOCAL_CANVAS_SIZE={shape.canvas})",
                    code="model_mismatch",
                )
            self._top_k = shape.top_k
            self._model_batch = shape.max_batch_size or 1
            self.model_name = self._explicit_name or shape.preset
            self.has_dense = shape.dense
            await self._setup_shared_memory()
            self._needs_setup = False

    async def _model_config(self) -> ModelConfig:
        if not await self._call(self._client.is_model_ready(self._model)):
            raise _TransientError(f"model {self._model!r} is not ready on Triton")
        if self._protocol == "http":
            return json_format.ParseDict(
                await self._call(self._client.get_model_config(self._model)), ModelConfig(), ignore_unknown_fields=True
            )
        return (await self._call(self._client.get_model_config(self._model))).config

    def _bytes_per_image(self) -> int:
        """The uint8 input canvas plus the three float32 top-k outputs."""
        return 3 * self.fixed_canvas**2 + 4 * self._top_k * (4 + 1 + 10)

    def _region_bytes(self) -> int:
        return self._bytes_per_image() * min(self._max_batch_size, self._model_batch)

    async def _setup_shared_memory(self) -> None:
        if self._shm_mode == "off" or (self._shm_mode == "auto" and not resolves_to_loopback(self._url)):
            return
        try:
            for name in self._stale_regions:
                await self._unregister(name)
            self._stale_regions.clear()
            if self._region is None or self._region.size != self._region_bytes():
                self._drop_region()
                self._generation += 1
                name = f"facelocal-{self._instance}-{self._generation}"
                self._region = _SharedRegion.create(name, self._region_bytes())
            await self._register(self._region)
        except (OSError, ServiceError, _TransientError) as exc:
            self._drop_region()
            if self._shm_mode == "on":
                raise unavailable(f"shared memory with Triton at {self._url} failed: {exc}") from exc
            log.warning("Triton shared memory probe failed (%s); sending tensors over the wire", exc)
            return
        log.info("Triton at %s reads tensors from shared memory %s", self._url, self._region.key)

    async def _register(self, region: _SharedRegion) -> None:
        """Register ``region`` (again, after a restart) and check that Triton reports it."""
        await self._unregister(region.name)
        await self._call(self._client.register_system_shared_memory(region.name, region.key, region.size))
        status = await self._call(self._client.get_system_shared_memory_status(region.name))
        if region.name not in str(status):
            raise unavailable(f"Triton does not list shared memory region {region.name}")

    async def _unregister(self, name: str) -> None:
        try:
            await self._call(self._client.unregister_system_shared_memory(name))
        except (ServiceError, _TransientError):
            pass  # not registered (or Triton restarted and forgot it): nothing to drop

    def _retire_region(self) -> None:
        """Stop using the region after a failed or abandoned request.

        Triton may still write that request's outputs into it later; a fresh region (new name) keeps
        those late writes away from the next request. The file is unlinked but the mapping is left to
        the garbage collector: arrays of the failed request may still point into it, and Triton's own
        mapping stays valid either way.
        """
        if self._region is not None:
            self._stale_regions.append(self._region.name)
            self._region.path.unlink(missing_ok=True)
            self._region = None
            self._needs_setup = True

    def _drop_region(self) -> None:
        if self._region is not None:
            self._region.close()
            self._region = None

    # -- inference -----------------------------------------------------------------------------------

    async def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(B, 3, S, S)`` uint8 canvases to boxes ``(B, K, 4)``, scores ``(B, K)``, landmarks ``(B, K, 10)``."""
        deadline = time.monotonic() + self._timeout_s
        last_error: Exception | None = None
        for attempt in range(MAX_ATTEMPTS):
            try:
                if self._needs_setup:
                    await self._setup()
                chunks = [
                    await self._infer_chunk(batch[start : start + self._model_batch])
                    for start in range(0, len(batch), self._model_batch)
                ]
                return tuple(np.concatenate(parts) for parts in zip(*chunks, strict=True))
            except _TransientError as exc:
                self._needs_setup = True
                last_error = exc
                await self._reconnect()
                if attempt + 1 == MAX_ATTEMPTS or time.monotonic() + RETRY_DELAY_S >= deadline:
                    break
                await asyncio.sleep(RETRY_DELAY_S)
        raise unavailable(f"Triton at {self._url} is unavailable: {last_error}")

    async def _infer_chunk(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(batch) == 0:
            raise ValueError("empty batch")
        batch = np.ascontiguousarray(batch, dtype=INPUT_DTYPE)
        if self._region is not None and len(batch) * self._bytes_per_image() <= self._region.size:
            async with self._region_lock:  # one request at a time owns the region
                try:
                    return await self._infer_shared(batch, self._region)
                except BaseException:  # timeouts and cancellations too: Triton may still write into it
                    self._retire_region()
                    raise
        return await self._infer_wire(batch)

    def _output_shapes(self, count: int) -> list[tuple[int, ...]]:
        return [(count, self._top_k, 4), (count, self._top_k), (count, self._top_k, 10)]

    async def _infer_wire(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        types = self._types
        tensor = types.InferInput(INPUT_NAME, list(batch.shape), "UINT8")
        tensor.set_data_from_numpy(batch)
        outputs = [types.InferRequestedOutput(name) for name in OUTPUT_NAMES]
        result = await self._call(self._client.infer(self._model, [tensor], outputs=outputs))
        return tuple(result.as_numpy(name) for name in OUTPUT_NAMES)

    async def _infer_shared(
        self, batch: np.ndarray, region: _SharedRegion
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        types = self._types
        input_bytes = batch.nbytes
        region.array(0, batch.shape, INPUT_DTYPE)[...] = batch
        tensor = types.InferInput(INPUT_NAME, list(batch.shape), "UINT8")
        tensor.set_shared_memory(region.name, input_bytes)
        outputs, views, offset = [], [], input_bytes
        for name, shape in zip(OUTPUT_NAMES, self._output_shapes(len(batch)), strict=True):
            size = 4 * int(np.prod(shape))
            output = types.InferRequestedOutput(name)
            output.set_shared_memory(region.name, size, offset=offset)
            outputs.append(output)
            views.append(region.array(offset, shape))
            offset += size
        await self._call(self._client.infer(self._model, [tensor], outputs=outputs))
        return tuple(view.copy() for view in views)  # the region is reused by the next request

    # -- health and shutdown -------------------------------------------------------------------------

    async def _reconnect(self) -> None:
        """Replace the client: a fresh gRPC channel connects at once instead of waiting out its backoff."""
        stale, self._client_instance = self._client_instance, None
        if stale is None:
            return
        try:
            await stale.close()
        except Exception as exc:  # closing a broken connection may fail in protocol-specific ways
            log.debug("closing the stale Triton client failed: %s", exc)

    async def ready(self) -> bool:
        """True only when Triton answers and reports the model ready."""
        try:
            return bool(await self._call(self._client.is_model_ready(self._model)))
        except (ServiceError, _TransientError):
            self._needs_setup = True
            await self._reconnect()
            return False

    async def close(self) -> None:
        if self._region is not None:
            try:
                await self._call(self._client.unregister_system_shared_memory(self._region.name))
            except (ServiceError, _TransientError):
                pass  # Triton is gone; its registration went with it
            self._drop_region()
        if self._client_instance is not None:
            await self._client_instance.close()
            self._client_instance = None
