"""Running the service: REST (uvicorn) and gRPC in one process and event loop, with graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal

import uvicorn

from service.backends import create_backend
from service.backends.base import InferenceBackend
from service.core import DetectionCore
from service.grpc.server import start_grpc_server
from service.memory import map_large_blocks
from service.rest import create_app
from service.rest.connections import guarded_protocol
from service.settings import Settings

logger = logging.getLogger("facelocal.service")

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: :func:`serve` owns shutdown, so the batcher can drain after
    the HTTP server has finished its in-flight requests (uvicorn would re-raise the signal and exit first)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


async def serve(settings: Settings, stop: asyncio.Event, backend: InferenceBackend | None = None) -> None:
    """Serve until ``stop`` is set, then shut down in order; over ``backend``, or the one ``settings`` name.

    Start: load the backend, listen on REST and gRPC, warm up in the background (``/readyz`` and gRPC
    health say ready only after the warm-up inference passed). Stop: stop accepting, answer requests whose
    body is still arriving with 503 ``shutting_down`` (and an open gRPC stream's next frame in-band, which ends
    the stream), let in-flight requests finish (up to
    ``shutdown_grace_s``), drain the batcher, release the backend.
    """
    if backend is None:
        backend = await asyncio.to_thread(create_backend, settings)
    core = DetectionCore(settings, backend)
    app = create_app(settings, core)
    http = _Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.http_port,
            lifespan="off",
            log_level="warning",
            http=guarded_protocol(settings.header_timeout_s, settings.max_connections),
            timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
        )
    )
    warm_up = asyncio.create_task(core.start(), name="warm-up")
    warm_up.add_done_callback(_log_warm_up)
    grpc_stopping = asyncio.Event()
    grpc_server = await start_grpc_server(settings, core, grpc_stopping)
    http_task = asyncio.create_task(http.serve(), name="uvicorn")
    stop_task = asyncio.create_task(stop.wait())
    logger.info("REST on %s:%d, gRPC on %s:%d", settings.host, settings.http_port, settings.host, settings.grpc_port)
    if settings.api_key is None and settings.host not in LOOPBACK_HOSTS:
        logger.warning("no API key: anyone who reaches %s can use /v1 (set FACELOCAL_API_KEY)", settings.host)
    try:
        # uvicorn returns early if it cannot bind: shut down the rest rather than serve half a service.
        await asyncio.wait({http_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_task.cancel()
        app.state.body_reads.stop()
        grpc_stopping.set()
        http.should_exit = True
        await asyncio.gather(http_task, grpc_server.stop(settings.shutdown_grace_s), return_exceptions=True)
        await asyncio.gather(warm_up, return_exceptions=True)
        await core.stop()
        await backend.close()
        logger.info("stopped")
    if not http.started:
        raise RuntimeError(f"REST server could not start on {settings.host}:{settings.http_port}")


def _log_warm_up(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("warm-up inference failed; the service stays not ready: %s", task.exception())


def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT (``facelocal serve``)."""

    map_large_blocks()  # before the threads that allocate start (see service/memory.py)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(main())
