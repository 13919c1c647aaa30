"""The gRPC server: FaceDetector, the standard health service and server reflection on one port."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service.core import DetectionCore
from service.grpc.gen import facelocal_pb2_grpc as pb_grpc
from service.grpc.servicer import SERVICE_NAME, FaceDetectorServicer
from service.settings import Settings

# How often Watch subscribers of the health service learn about readiness changes (Check is always exact).
READINESS_POLL_S = 0.5
# Services whose health follows the core's readiness: the whole server ("") and FaceDetector.
HEALTH_SERVICES = ("", SERVICE_NAME)
# Strong references to the readiness followers, which the event loop only holds weakly.
_BACKGROUND: set[asyncio.Task] = set()


class ReadinessHealthServicer(health.aio.HealthServicer):
    """grpc.health.v1.Health that reports SERVING only while the core is ready (warm-up passed)."""

    def __init__(self, core: DetectionCore) -> None:
        super().__init__()
        self._core = core

    async def sync(self) -> None:
        serving = health_pb2.HealthCheckResponse
        status = serving.SERVING if self._core.ready else serving.NOT_SERVING
        for service in HEALTH_SERVICES:
            await self.set(service, status)

    async def Check(self, request: health_pb2.HealthCheckRequest, context) -> health_pb2.HealthCheckResponse:
        await self.sync()
        return await super().Check(request, context)

    async def follow(self, server: grpc.aio.Server) -> None:
        """Keeps the status current for Watch streams until the server terminates."""
        await self.sync()
        while await server.wait_for_termination(timeout=READINESS_POLL_S):
            await self.sync()


async def start_grpc_server(settings: Settings, core: DetectionCore) -> grpc.aio.Server:
    """Starts FaceDetector, health and reflection on ``settings.host:settings.grpc_port`` over ``core``; health
    reports NOT_SERVING until the core's warm-up has passed, so the server may start before it.

    Messages larger than ``settings.max_body_bytes`` are refused by gRPC itself (RESOURCE_EXHAUSTED).
    Stop it with ``await server.stop(grace)``.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            # A second server on a busy port must fail to start, not silently share the port.
            ("grpc.so_reuseport", 0),
        ]
    )
    api_key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    # Two batches in flight per stream keep the batcher fed; never more than the queue holds.
    stream_window = min(2 * settings.max_batch_size, settings.max_queue)
    pb_grpc.add_FaceDetectorServicer_to_server(
        FaceDetectorServicer(core, api_key=api_key, stream_window=stream_window), server
    )
    health_servicer = ReadinessHealthServicer(core)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
    await server.start()
    follower = asyncio.create_task(health_servicer.follow(server), name="grpc-health-readiness")
    _BACKGROUND.add(follower)
    follower.add_done_callback(_BACKGROUND.discard)
    return server
