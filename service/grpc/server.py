"""The gRPC server: FaceDetector, the standard health service and server reflection on one port."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service.core import DetectionCore
from service.grpc.gen import facelocal_pb2_grpc as pb_grpc
from service.grpc.messages import GuardedRegistration
from service.grpc.servicer import SERVICE_NAME, FaceDetectorServicer
from service.settings import Settings

# How often Watch subscribers of the health service learn about readiness changes (Check is always exact).
READINESS_POLL_S = 0.5
# Services whose health follows the core's readiness: the whole server ("") and FaceDetector.
HEALTH_SERVICES = ("", SERVICE_NAME)
# Strong references to the readiness followers, which the event loop only holds weakly.
_BACKGROUND: set[asyncio.Task] = set()
# gRPC refuses larger messages itself (RESOURCE_EXHAUSTED, no error-code) before reading them; between
# max_body_bytes and this many times it, the servicer answers INVALID_ARGUMENT payload_too_large as REST does.
RECEIVE_HEADROOM = 2
# Upper bounds, in bytes, of the parts of a reply: one 112x112 RGB crop as PNG (37,632 bytes of pixels; even
# incompressible noise stays under this), the rest of a face, and the rest of an image's result.
CROP_BYTES = 40 * 1024
FACE_BYTES = 256
RESULT_BYTES = 1024


def max_reply_bytes(settings: Settings) -> int:
    """The largest reply the caps allow: a full batch, every image with the most faces (or crops) it may return.

    The server's max send message size, so that a reply the caps allow is never refused, and no other is built.
    """
    per_image = RESULT_BYTES + max(settings.max_faces * FACE_BYTES, settings.max_crops * (CROP_BYTES + FACE_BYTES))
    return settings.max_batch_images * per_image


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


async def start_grpc_server(
    settings: Settings, core: DetectionCore, stopping: asyncio.Event | None = None
) -> grpc.aio.Server:
    """Starts FaceDetector, health and reflection on ``settings.host:settings.grpc_port`` over ``core``; health
    reports NOT_SERVING until the core's warm-up has passed, so the server may start before it.

    Requests over ``settings.max_body_bytes`` are INVALID_ARGUMENT (``payload_too_large``), and so are messages
    that do not parse (``invalid_message``); replies are at most :func:`max_reply_bytes`. Set ``stopping``
    before ``await server.stop(grace)``: open streams then end at their next frame.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", RECEIVE_HEADROOM * settings.max_body_bytes),
            ("grpc.max_send_message_length", max_reply_bytes(settings)),
            # A second server on a busy port must fail to start, not silently share the port.
            ("grpc.so_reuseport", 0),
        ]
    )
    # Two batches in flight per stream keep the batcher fed; never more than the queue holds.
    stream_window = min(2 * settings.max_batch_size, settings.max_queue)
    servicer = FaceDetectorServicer(
        core,
        api_key=settings.api_key,
        stream_window=stream_window,
        max_request_bytes=settings.max_body_bytes,
        stopping=stopping,
    )
    pb_grpc.add_FaceDetectorServicer_to_server(servicer, GuardedRegistration(server, servicer.refuse_unparsable))
    health_servicer = ReadinessHealthServicer(core)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
    await server.start()
    follower = asyncio.create_task(health_servicer.follow(server), name="grpc-health-readiness")
    _BACKGROUND.add(follower)
    follower.add_done_callback(_BACKGROUND.discard)
    return server
