"""facelocal.v1.FaceDetector: a thin layer over the shared DetectionCore."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import grpc
from pydantic import SecretStr

from service import errors, schemas
from service.auth import require_bearer
from service.core import DetectionCore
from service.errors import ServiceError
from service.grpc import converters
from service.grpc.gen import facelocal_pb2 as pb
from service.grpc.gen import facelocal_pb2_grpc as pb_grpc
from service.grpc.status import grpc_status
from service.metrics import record_request

logger = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["FaceDetector"].full_name
ERROR_CODE_KEY = "error-code"
RETRY_AFTER_KEY = "retry-after"
PROTOCOL = "grpc"
# Longest request_id echoed back: replies stay bounded by the caps, not by what a client sends.
MAX_REQUEST_ID = 256


def error_metadata(error: ServiceError) -> tuple[tuple[str, str], ...]:
    """Trailing metadata carrying the REST error code (and Retry-After for a full queue)."""
    metadata = [(ERROR_CODE_KEY, error.code)]
    if error.retry_after_s is not None:
        metadata.append((RETRY_AFTER_KEY, str(error.retry_after_s)))
    return tuple(metadata)


class FaceDetectorServicer(pb_grpc.FaceDetectorServicer):
    """Detect, DetectBatch, DetectStream, ListModels and Anonymize over ``core`` (a started DetectionCore)."""

    def __init__(
        self,
        core: DetectionCore,
        api_key: SecretStr | None,
        stream_window: int,
        max_request_bytes: int,
        stopping: asyncio.Event | None = None,
    ) -> None:
        """``stream_window``: frames of one DetectStream in flight at once; more than one batch keeps the
        batcher fed while the previous batch runs, and the bound keeps one client from filling the queue.
        ``max_request_bytes``: the largest request message (REST's max_body_bytes). ``stopping``: set when the
        server shuts down; an open stream's next frame is then answered ``shutting_down`` and the stream ends."""
        self._core = core
        self._api_key = api_key
        self._stream_window = stream_window
        self._max_request_bytes = max_request_bytes
        self._stopping = stopping or asyncio.Event()

    async def Detect(self, request: pb.DetectRequest, context: grpc.aio.ServicerContext) -> pb.DetectResponse:
        async with self._handling(context, "Detect"):
            self._check_request(request)
            options = converters.options_from_proto(request.options, schemas.DetectOptions)
            result = await self._core.detect(request.image, options)
            return converters.result_to_proto(result, request.request_id)

    async def DetectBatch(
        self, request: pb.DetectBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.DetectBatchResponse:
        async with self._handling(context, "DetectBatch"):
            self._check_request(request)
            if not request.images:
                raise errors.validation_error("images must contain at least one image")
            options = converters.options_from_proto(request.options, schemas.DetectOptions)
            outcomes = await self._core.detect_batch(list(request.images), options)
            return pb.DetectBatchResponse(
                items=[converters.batch_item_to_proto(outcome) for outcome in outcomes],
                request_id=request.request_id,
            )

    async def DetectStream(
        self, request_iterator: AsyncIterator[pb.DetectRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.DetectStreamResponse]:
        # Authentication failure ends the stream; per-frame failures are answered in-band (see the .proto).
        async with self._handling(context, "DetectStream", record=False):
            pass
        window = asyncio.Semaphore(self._stream_window)
        in_order: asyncio.Queue[asyncio.Task[pb.DetectStreamResponse] | None] = asyncio.Queue()

        async def submit_frames() -> None:
            try:
                async for request in request_iterator:
                    await window.acquire()
                    in_order.put_nowait(asyncio.create_task(self._detect_frame(request)))
                    if self._stopping.is_set():
                        break  # that frame is answered shutting_down: shutdown need not wait for the client
            finally:
                in_order.put_nowait(None)

        reader = asyncio.create_task(submit_frames())
        try:
            while (frame := await in_order.get()) is not None:
                response = await frame
                window.release()
                yield response
            await reader  # surfaces a failure to read the request stream
        finally:
            reader.cancel()
            while not in_order.empty():
                if (frame := in_order.get_nowait()) is not None:
                    frame.cancel()

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        async with self._handling(context, "ListModels"):
            return pb.ListModelsResponse(
                models=[converters.model_info_to_proto(info) for info in self._core.model_infos()]
            )

    async def Anonymize(self, request: pb.AnonymizeRequest, context: grpc.aio.ServicerContext) -> pb.AnonymizeResponse:
        async with self._handling(context, "Anonymize"):
            self._check_request(request)
            options = converters.options_from_proto(request.options, schemas.AnonymizeOptions)
            result = await self._core.anonymize(request.image, options)
            return converters.anonymized_to_proto(result, request.request_id)

    async def _detect_frame(self, request: pb.DetectRequest) -> pb.DetectStreamResponse:
        started = time.perf_counter()
        try:
            if self._stopping.is_set():
                raise errors.unavailable("the server is shutting down; send the frame again", code="shutting_down")
            self._check_request(request)
            options = converters.options_from_proto(request.options, schemas.DetectOptions)
            result = await self._core.detect(request.image, options)
        except ServiceError as error:
            self._record("DetectStream", grpc_status(error), started)
            return pb.DetectStreamResponse(request_id=request.request_id, error=converters.error_to_proto(error))
        self._record("DetectStream", grpc.StatusCode.OK, started)
        return pb.DetectStreamResponse(request_id=request.request_id, result=converters.result_to_proto(result))

    async def refuse_unparsable(self, context: grpc.aio.ServicerContext, endpoint: str) -> None:
        """Answer a call whose request message does not parse (see :mod:`service.grpc.messages`)."""
        async with self._handling(context, endpoint):
            raise errors.bad_request("invalid_message", f"the request is not a valid {endpoint} request message")

    @contextlib.asynccontextmanager
    async def _handling(self, context: grpc.aio.ServicerContext, endpoint: str, record: bool = True):
        """Authenticates the call, turns ServiceError into a status with ``error-code`` metadata and records the
        request in the metrics (``record=False``: only failures, for streams that record per frame).

        Recording happens before the status is sent, so a client that sees the answer also sees it counted."""
        started = time.perf_counter()
        try:
            self._authenticate(context)
            yield
        except ServiceError as error:
            self._record(endpoint, grpc_status(error), started)
            await context.abort(grpc_status(error), error.message, trailing_metadata=error_metadata(error))
        except Exception:
            # Anything else is a bug: log it, answer INTERNAL without leaking internals.
            self._record(endpoint, grpc.StatusCode.INTERNAL, started)
            logger.exception("gRPC %s failed", endpoint)
            await context.abort(
                grpc.StatusCode.INTERNAL, "internal error", trailing_metadata=((ERROR_CODE_KEY, "internal"),)
            )
        else:
            if record:
                self._record(endpoint, grpc.StatusCode.OK, started)

    def _check_request(self, request: pb.DetectRequest | pb.DetectBatchRequest | pb.AnonymizeRequest) -> None:
        """Refuse a request larger than REST's body limit, and a request_id too long to echo back."""
        size = request.ByteSize()
        if size > self._max_request_bytes:
            raise errors.payload_too_large(f"the request is {size} bytes; the limit is {self._max_request_bytes}")
        if len(request.request_id) > MAX_REQUEST_ID:
            raise errors.validation_error(f"request_id is longer than {MAX_REQUEST_ID} characters")

    def _authenticate(self, context: grpc.aio.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata() or ())
        require_bearer(metadata.get("authorization"), self._api_key, how_to="metadata")

    def _record(self, endpoint: str, status: grpc.StatusCode, started: float) -> None:
        record_request(self._core.metrics, PROTOCOL, endpoint, status.name, time.perf_counter() - started)
