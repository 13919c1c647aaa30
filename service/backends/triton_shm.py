"""System shared memory between the service and a Triton on the same host: one region's lifecycle.

Tensors travel through shared memory when the Triton URL's host resolves to a loopback address and a probe
passes (a region created here is registered with Triton, which opens it by its key; Triton reports it back).
Otherwise, or when that fails, they travel in the request itself (:meth:`TritonClient.infer_wire`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import mmap
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from service.backends.triton_client import TransientError, TritonClient
from service.errors import ServiceError, unavailable

log = logging.getLogger(__name__)

SHM_ROOT = Path("/dev/shm")
OUTPUT_DTYPE = np.float32


@dataclass
class SharedRegion:
    """A POSIX shared-memory region (a file under /dev/shm) mapped here.

    Layout during a request: the uint8 input batch first, then each float32 output for the batch.
    """

    name: str
    path: Path
    buffer: mmap.mmap

    @classmethod
    def create(cls, name: str, size: int) -> SharedRegion:
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

    def array(self, offset: int, shape: tuple[int, ...], dtype: type[np.generic]) -> np.ndarray:
        return np.ndarray(shape, dtype, buffer=self.buffer, offset=offset)

    def close(self) -> None:
        self.buffer.close()
        self.path.unlink(missing_ok=True)


def resolves_to_loopback(url: str) -> bool:
    """Whether every address the ``host:port`` URL's host resolves to is a loopback address."""
    host = url.rsplit(":", 1)[0].strip("[]") if ":" in url else url
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses)


def _float_bytes(shape: tuple[int, ...]) -> int:
    return np.dtype(OUTPUT_DTYPE).itemsize * int(np.prod(shape))


class SharedMemory:
    """The region a backend's requests go through, registered with the Triton of ``client``.

    ``mode``: ``on`` (a failure to set it up is a 503), ``auto`` (on for a loopback URL, the wire when it
    fails) or ``off``. :meth:`setup` (re)creates the region, ``slots`` times the size of the largest request,
    and registers it; each request in flight owns one slot, so ``slots`` requests can run at once.
    """

    def __init__(self, client: TritonClient, mode: Literal["auto", "on", "off"], slots: int = 1) -> None:
        self._client = client
        self._mode = mode
        self.region: SharedRegion | None = None
        self._slots = slots
        self._slot_size = 0
        self._free = asyncio.Semaphore(slots)
        self._free_offsets: list[int] = []
        self._instance = uuid.uuid4().hex[:12]
        self._generation = 0
        self._stale: list[str] = []

    async def setup(self, size: int) -> None:
        """Register a region of ``size`` bytes a slot with Triton (again, after a restart); a new one if the size
        changed. Falls back to no region, with a warning, unless ``mode`` is ``on``."""
        if self._mode == "off" or (self._mode == "auto" and not resolves_to_loopback(self._client.url)):
            return
        try:
            for name in self._stale:
                await self._unregister(name)
            self._stale.clear()
            if self.region is None or self._slot_size != size:
                self._destroy()
                self._generation += 1
                self.region = SharedRegion.create(f"facelocal-{self._instance}-{self._generation}", size * self._slots)
                self._slot_size = size
                self._free_offsets = [slot * size for slot in range(self._slots)]
            await self._register(self.region)
        except (OSError, ServiceError, TransientError) as exc:
            self._destroy()
            if self._mode == "on":
                raise unavailable(f"shared memory with Triton at {self._client.url} failed: {exc}") from exc
            log.warning("Triton shared memory probe failed (%s); sending tensors over the wire", exc)
            return
        log.info("Triton at %s reads tensors from shared memory %s", self._client.url, self.region.key)

    async def infer(
        self, input_name: str, batch: np.ndarray, outputs: Sequence[tuple[str, tuple[int, ...]]]
    ) -> tuple[np.ndarray, ...] | None:
        """``batch`` (uint8) and the float32 ``outputs`` (name, shape) through the region, or ``None`` when there
        is no region large enough (off, failed, retired meanwhile): then the caller sends them on the wire."""
        if self.region is None or batch.nbytes + sum(_float_bytes(shape) for _, shape in outputs) > self._slot_size:
            return None
        async with self._free:
            region = self.region
            if region is None:
                return None
            offset = self._free_offsets.pop()
            try:
                return await self._infer(region, offset, input_name, batch, outputs)
            except BaseException:  # timeouts and cancellations too: Triton may still write into it
                self._retire()
                raise
            finally:
                if self.region is region:  # a retired region's slots are not the fresh one's
                    self._free_offsets.append(offset)

    async def _infer(
        self,
        region: SharedRegion,
        slot: int,
        input_name: str,
        batch: np.ndarray,
        outputs: Sequence[tuple[str, tuple[int, ...]]],
    ) -> tuple[np.ndarray, ...]:
        """One request through the slot at byte ``slot`` of ``region``: the input, then each output."""
        types = self._client.types
        region.array(slot, batch.shape, np.uint8)[...] = batch
        tensor = types.InferInput(input_name, list(batch.shape), "UINT8")
        tensor.set_shared_memory(region.name, batch.nbytes, offset=slot)
        requested, views, offset = [], [], slot + batch.nbytes
        for name, shape in outputs:
            output = types.InferRequestedOutput(name)
            output.set_shared_memory(region.name, _float_bytes(shape), offset=offset)
            requested.append(output)
            views.append(region.array(offset, shape, OUTPUT_DTYPE))
            offset += _float_bytes(shape)
        await self._client.infer(inputs=[tensor], outputs=requested)
        return tuple(view.copy() for view in views)  # the region is reused by the next request

    async def _register(self, region: SharedRegion) -> None:
        """Register ``region`` and check that Triton reports it."""
        await self._unregister(region.name)
        raw = self._client.raw
        await self._client.call(raw.register_system_shared_memory(region.name, region.key, region.size))
        status = await self._client.call(raw.get_system_shared_memory_status(region.name))
        if region.name not in str(status):
            raise unavailable(f"Triton does not list shared memory region {region.name}")

    async def _unregister(self, name: str) -> None:
        try:
            await self._client.call(self._client.raw.unregister_system_shared_memory(name))
        except (ServiceError, TransientError):
            pass  # not registered (or Triton restarted and forgot it): nothing to drop

    def _retire(self) -> None:
        """Stop using the region after a failed or abandoned request, and set the connection up again.

        Triton may still write that request's outputs into it later; a fresh region (new name) keeps
        those late writes away from the next request. The file is unlinked but the mapping is left to
        the garbage collector: arrays of the failed request may still point into it, and Triton's own
        mapping stays valid either way.
        """
        if self.region is not None:
            self._stale.append(self.region.name)
            self.region.path.unlink(missing_ok=True)
            self.region = None
            self._client.invalidate()

    def _destroy(self) -> None:
        if self.region is not None:
            self.region.close()
            self.region = None

    async def close(self) -> None:
        """Unregister and destroy the region (Triton being gone already is fine)."""
        if self.region is not None:
            await self._unregister(self.region.name)
            self._destroy()
