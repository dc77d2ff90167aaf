"""Graceful stop's first phase: refuse new PDV calls with UNAVAILABLE while in-flight ones finish.

grpc's own stop (Server.stop) cancels, with status CANCELLED, every call whose stream
reaches the server after the stop began but before the client has read the GOAWAY: the
transport accepts the stream, the server core finds itself shut down and kills it. A
caller cannot tell that CANCELLED from one it caused, so it does not retry, although
nothing was done. So PdvServer.stop drains here first: a new call is refused with
UNAVAILABLE, retryable, and health answers NOT_SERVING, while the calls already running
finish; only then does grpc's stop close the port. By then the clients that were told
UNAVAILABLE have gone elsewhere; one that keeps sending to this server at that very
moment can still get grpc's CANCELLED, which nothing above grpc's core can change.

Health and reflection pass untouched: a health check during the drain must answer
NOT_SERVING, and a long health Watch stream is not a call to wait for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc

from vault.api.handlers import PerMethodInterceptor

SHUTTING_DOWN = "server is shutting down; retry (another replica, or this one after its restart)"
_DRAINED_SERVICES = "/pdv."


class Drain(PerMethodInterceptor):
    """Counts PDV calls in flight; after `refuse_new`, refuses new ones with UNAVAILABLE."""

    def __init__(self) -> None:
        super().__init__()
        self._idle = threading.Condition()
        self._running = 0
        self._closed = False

    def applies(self, method: str) -> bool:
        return method.startswith(_DRAINED_SERVICES)

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        return _counted_handler(handler, self._enter, self._leave)

    def refuse_new(self) -> None:
        """Refuse every PDV call that has not started yet, from now on."""
        with self._idle:
            self._closed = True

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the running calls to finish; True if none is left."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout)

    def _enter(self, context: grpc.ServicerContext) -> None:
        # Checked and counted under one lock: wait_idle() cannot miss a call that got past refuse_new().
        with self._idle:
            admitted = not self._closed
            if admitted:
                self._running += 1
        if not admitted:
            context.abort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)

    def _leave(self) -> None:
        with self._idle:
            self._running -= 1
            if self._running == 0:
                self._idle.notify_all()


def _counted_handler(handler: grpc.RpcMethodHandler, enter: Callable, leave: Callable) -> grpc.RpcMethodHandler:
    """`handler` with its behaviour run between enter(context) and leave()."""
    if handler.response_streaming:
        inner = handler.stream_stream if handler.request_streaming else handler.unary_stream

        # The answer is produced while the generator is consumed, after the behaviour returns.
        def stream(request, context):  # type: ignore[no-untyped-def]
            enter(context)
            try:
                yield from inner(request, context)
            finally:
                leave()

        make = grpc.stream_stream_rpc_method_handler if handler.request_streaming else grpc.unary_stream_rpc_method_handler
        return make(stream, handler.request_deserializer, handler.response_serializer)
    inner = handler.stream_unary if handler.request_streaming else handler.unary_unary

    def call(request, context):  # type: ignore[no-untyped-def]
        enter(context)
        try:
            return inner(request, context)
        finally:
            leave()

    make = grpc.stream_unary_rpc_method_handler if handler.request_streaming else grpc.unary_unary_rpc_method_handler
    return make(call, handler.request_deserializer, handler.response_serializer)
