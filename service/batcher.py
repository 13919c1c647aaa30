"""Cross-request batching that never idles a request: inputs from concurrent requests share one backend inference.

One :class:`MicroBatcher` serves the detector (canvases) and one the mesh stage (face crops): each stacks
same-shaped inputs, calls the backend's infer function once per batch and hands every caller its own row of
each output array.

The rule is continuous batching's (and Triton's dynamic batcher's): when the backend has room for another batch,
the oldest waiting input goes at once with whatever else of its shape is waiting; while the backend is busy,
arrivals wait and gather into the next batch. Batches grow with load by themselves and a lone request never
waits for company. With a backend in this process, the core may go further for a request that is alone on an
idle server (:meth:`MicroBatcher.run_here`): inferred on the event loop itself, without the hand-offs to the
backend's thread and back.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from facelocal.pipeline import stacked
from service.errors import ServiceError, queue_full, unavailable
from service.metrics import BatchMetrics

# ``(B, ...)`` stacked inputs to the backend's ``(B, ...)`` output arrays, one row per input.
InferFunction = Callable[[np.ndarray], Awaitable[Sequence[np.ndarray]]]
# The same on the calling thread (a backend in this process).
BlockingInferFunction = Callable[[np.ndarray], Sequence[np.ndarray]]


@dataclass
class BatchOutput:
    """One input's rows of a batched inference and what it cost.

    ``rows[i]`` is row ``b`` of the backend's ``i``-th output, ``b`` this input's place in the batch (for the
    detector: ``boxes (K, 4)``, ``scores (K,)``, ``landmarks (K, 10)`` in canvas pixels).
    """

    rows: tuple[np.ndarray, ...]
    queue_ms: float
    inference_ms: float
    batch_size: int


@dataclass
class _Pending:
    tensor: np.ndarray
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Runs one ``infer`` per batch of up to ``max_batch_size`` same-shaped inputs, at most ``max_in_flight``
    batches at once.

    A batch is the oldest waiting input and the next ones of its shape (inputs of other shapes keep their place
    in the queue, so two shapes arriving interleaved take turns and neither starves). It leaves as soon as fewer
    than ``max_in_flight`` batches are running: a lone request on an idle backend is dispatched at once. There is
    no waiting for a part batch to fill: an extra delay was measured not to pay, on CPU nor on a local Triton
    (README, "The service at concurrency 1").

    At most ``max_queue`` inputs wait: beyond that ``submit`` fails fast with ``queue_full`` (503) instead of
    growing memory.
    """

    def __init__(
        self,
        infer: InferFunction,
        metrics: BatchMetrics,
        *,
        max_batch_size: int,
        max_queue: int,
        max_in_flight: int = 1,
        name: str = "inference",
        infer_here: BlockingInferFunction | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self._infer_function = infer
        self._infer_here = infer_here
        self._metrics = metrics
        self._max_batch_size = max_batch_size
        self._max_queue = max_queue
        self.max_in_flight = max_in_flight
        self._name = name
        self._queue: deque[_Pending] = deque()
        # Set when an input arrives, a batch finishes or the batcher stops; the worker clears it before it waits.
        self._wake = asyncio.Event()
        self._worker: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()  # batches being inferred
        self._accepting = False
        # The most batches that have run at once (tests and benchmarks read it).
        self.peak_in_flight = 0

    def start(self) -> None:
        self._accepting = True
        self._worker = asyncio.create_task(self._run(), name=f"{self._name}-batcher")

    async def stop(self) -> None:
        """Refuse new inputs, finish every queued one, then return."""
        self._accepting = False
        self._wake.set()
        if self._worker is not None:
            await self._worker
            self._worker = None

    async def submit(self, tensor: np.ndarray) -> BatchOutput:
        """Queue one input (for the detector a ``(3, H, W)`` uint8 canvas) and wait for its share of a batch."""
        if not self._accepting:
            raise unavailable("the service is not accepting work (starting or shutting down)", code="not_ready")
        if len(self._queue) >= self._max_queue:
            raise queue_full()
        pending = _Pending(tensor, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        self._metrics.queue_depth.set(len(self._queue))
        self._wake.set()
        return await pending.future

    @property
    def runs_here(self) -> bool:
        """Whether :meth:`run_here` can run at all: the backend is in this process (it has a blocking infer
        function)."""
        return self._infer_here is not None

    def run_here(self, tensors: Sequence[np.ndarray]) -> list[BatchOutput] | None:
        """``tensors`` (one shape, at most a batch) inferred as one batch at once on the calling thread, which the
        inference blocks: for the core's lone request on an idle server, on the event loop, which would only have
        waited for it. None where that cannot be (no blocking infer function, inputs queued or a batch running,
        stopped, several shapes or more than a batch): :meth:`submit` them instead."""
        if (
            self._infer_here is None  # not runs_here, spelled so that the type checker knows
            or self._queue
            or self._running
            or not self._accepting
            or not 0 < len(tensors) <= self._max_batch_size
            or any(tensor.shape != tensors[0].shape for tensor in tensors)
        ):
            return None
        started = time.perf_counter()
        try:
            outputs = self._infer_here(stacked(tensors))
        except ServiceError:
            raise
        except Exception as exc:
            raise self._backend_bug(exc) from exc
        return self._scattered(outputs, len(tensors), started, [started] * len(tensors))

    async def _wait(self) -> None:
        """Until something changes: an input arrives, a batch ends, the batcher stops."""
        self._wake.clear()
        await self._wake.wait()

    async def _collect(self) -> list[_Pending]:
        """The next batch, once the backend has room for it: the oldest input and up to ``max_batch_size - 1``
        later ones of its shape. Empty when stopped and drained."""
        while not self._queue or len(self._running) >= self.max_in_flight:
            if not self._queue and not self._accepting:
                return []
            await self._wait()
        shape = self._queue[0].tensor.shape
        batch: list[_Pending] = []
        rest: deque[_Pending] = deque()
        for pending in self._queue:
            (batch if pending.tensor.shape == shape and len(batch) < self._max_batch_size else rest).append(pending)
        self._queue = rest
        self._metrics.queue_depth.set(len(rest))
        return batch

    async def _run(self) -> None:
        while batch := await self._collect():
            task = asyncio.create_task(self._infer(batch), name=f"{self._name}-batch")
            self._running.add(task)
            self._metrics.in_flight.set(len(self._running))
            self.peak_in_flight = max(self.peak_in_flight, len(self._running))
            task.add_done_callback(self._finished)
        if self._running:
            await asyncio.gather(*self._running)

    def _finished(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        self._metrics.in_flight.set(len(self._running))
        self._wake.set()

    async def _infer(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            outputs = await self._infer_function(stacked([p.tensor for p in batch]))
        except ServiceError as exc:
            self._fail(batch, exc)
            return
        except Exception as exc:  # a backend bug must not kill the worker and hang every later request
            self._fail(batch, self._backend_bug(exc))
            return
        results = self._scattered(outputs, len(batch), started, [pending.enqueued for pending in batch])
        for pending, result in zip(batch, results, strict=True):
            if not pending.future.done():  # the caller may have gone away
                pending.future.set_result(result)

    def _scattered(
        self, outputs: Sequence[np.ndarray], size: int, started: float, enqueued: Sequence[float]
    ) -> list[BatchOutput]:
        """A finished batch of ``size`` inputs, counted in the metrics: each input's rows and times."""
        inference_ms = (time.perf_counter() - started) * 1000.0
        self._metrics.inferences_total.inc()
        self._metrics.batch_size.observe(size)
        return [
            BatchOutput(
                tuple(output[row] for output in outputs),
                queue_ms=(started - arrived) * 1000.0,
                inference_ms=inference_ms,
                batch_size=size,
            )
            for row, arrived in enumerate(enqueued)
        ]

    def _backend_bug(self, exc: Exception) -> ServiceError:
        return unavailable(f"{self._name} failed: {type(exc).__name__}: {exc}")

    @staticmethod
    def _fail(batch: list[_Pending], error: ServiceError) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)
