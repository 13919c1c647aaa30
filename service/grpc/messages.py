"""Request messages that do not parse: INVALID_ARGUMENT ``invalid_message``, like any other bad request.

grpc's own handling of a failing request deserializer is ``UNKNOWN`` with the Python exception in the details
and no ``error-code``. Here the generated handlers' deserializers hand the servicer a marker instead, and the
call is refused through the servicer (API key first, then the error with its ``error-code``, and the metrics).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

# What a deserializer returns for bytes that are not a message of its type.
UNPARSABLE = object()


class UnparsableMessage(Exception):
    """A streamed request message did not parse: raised by the request iterator the servicer reads from."""


# ``refuse(context, method)``: answers the call with INVALID_ARGUMENT ``invalid_message`` (by aborting it).
Refuse = Callable[[grpc.aio.ServicerContext, str], Awaitable[None]]


class GuardedRegistration:
    """Stands in for the server while generated code (``add_<Service>Servicer_to_server``) registers its
    handlers, and registers them on ``server`` with the guard around each."""

    def __init__(self, server: grpc.aio.Server, refuse: Refuse) -> None:
        self._server = server
        self._refuse = refuse

    def add_generic_rpc_handlers(self, handlers) -> None:
        """Ignored: the generated code registers the same handlers by name too, and those are guarded below."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        guarded = {method: self._guard(method, handler) for method, handler in handlers.items()}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, guarded),))
        self._server.add_registered_method_handlers(service, guarded)

    def _guard(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        parse = handler.request_deserializer
        refuse = self._refuse

        def deserialize(data: bytes) -> Any:
            try:
                return parse(data)
            except Exception:  # protobuf's DecodeError, or anything else a parser raises on foreign bytes
                return UNPARSABLE

        if handler.unary_unary is not None and not handler.request_streaming:
            behaviour = handler.unary_unary

            async def unary_unary(request, context):
                if request is UNPARSABLE:
                    return await refuse(context, method)
                return await behaviour(request, context)

            return handler._replace(request_deserializer=deserialize, unary_unary=unary_unary)
        if handler.stream_stream is not None:
            stream_behaviour = handler.stream_stream

            async def stream_stream(requests, context):
                try:
                    async for response in stream_behaviour(_parsed(requests), context):
                        yield response
                except UnparsableMessage:
                    await refuse(context, method)

            return handler._replace(request_deserializer=deserialize, stream_stream=stream_stream)
        raise TypeError(f"{method}: only unary-unary and stream-stream methods are guarded")


async def _parsed(requests: AsyncIterator) -> AsyncIterator:
    """The stream's messages, up to one that did not parse (answers before it are still sent)."""
    async for request in requests:
        if request is UNPARSABLE:
            raise UnparsableMessage
        yield request
