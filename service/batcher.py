"""Cross-request micro-batching: images from concurrent requests share one backend inference."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np

from service.backends.base import InferenceBackend
from service.errors import ServiceError, queue_full, unavailable
from service.metrics import ServiceMetrics


@dataclass
class BatchOutput:
    """One image's rows of a batched inference and what it cost.

    ``boxes (K, 4)``, ``scores (K,)``, ``landmarks (K, 10)`` in canvas pixels.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray
    queue_ms: float
    inference_ms: float


@dataclass
class _Pending:
    tensor: np.ndarray
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Collects ``(3, S, S)`` canvases into batches of up to ``max_batch_size``, waiting at most
    ``max_delay_ms`` after the first one, and runs one inference per batch.

    The queue is bounded by ``max_queue``: a full queue fails fast with ``queue_full`` (503) instead of
    growing memory. Batches run one after another; while one runs, the next fills up, so batches grow
    with load by themselves.
    """

    def __init__(
        self,
        backend: InferenceBackend,
        metrics: ServiceMetrics,
        *,
        max_batch_size: int,
        max_delay_ms: float,
        max_queue: int,
    ) -> None:
        self._backend = backend
        self._metrics = metrics
        self._max_batch_size = max_batch_size
        self._max_delay_s = max_delay_ms / 1000.0
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=max_queue)
        self._worker: asyncio.Task | None = None
        self._accepting = False

    def start(self) -> None:
        self._accepting = True
        self._worker = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Refuse new images, finish every queued one, then stop the worker."""
        self._accepting = False
        if self._worker is None:
            return
        await self._queue.join()
        self._worker.cancel()
        await asyncio.gather(self._worker, return_exceptions=True)
        self._worker = None

    async def submit(self, tensor: np.ndarray) -> BatchOutput:
        """Queue one ``(3, S, S)`` uint8 canvas and wait for its share of a batch."""
        if not self._accepting:
            raise unavailable("the service is not accepting work (starting or shutting down)", code="not_ready")
        pending = _Pending(tensor, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            raise queue_full() from None
        self._metrics.queue_depth.set(self._queue.qsize())
        return await pending.future

    async def _collect(self) -> list[_Pending]:
        """Block for the first image, then take more until the batch is full or the delay has passed."""
        batch = [await self._queue.get()]
        deadline = time.perf_counter() + self._max_delay_s
        while len(batch) < self._max_batch_size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            self._metrics.queue_depth.set(self._queue.qsize())
            try:
                await self._infer(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _infer(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            boxes, scores, landmarks = await self._backend.infer(np.stack([p.tensor for p in batch]))
        except ServiceError as exc:
            self._fail(batch, exc)
            return
        except Exception as exc:  # a backend bug must not kill the worker and hang every later request
            self._fail(batch, unavailable(f"inference failed: {type(exc).__name__}: {exc}"))
            return
        inference_ms = (time.perf_counter() - started) * 1000.0
        self._metrics.inferences_total.inc()
        self._metrics.batch_size.observe(len(batch))
        for row, pending in enumerate(batch):
            if not pending.future.done():  # the caller may have gone away
                pending.future.set_result(
                    BatchOutput(
                        boxes[row],
                        scores[row],
                        landmarks[row],
                        queue_ms=(started - pending.enqueued) * 1000.0,
                        inference_ms=inference_ms,
                    )
                )

    @staticmethod
    def _fail(batch: list[_Pending], error: ServiceError) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)
