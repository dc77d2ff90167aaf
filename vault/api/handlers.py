"""What the server's interceptors share: each serves a method through a wrapped copy of its
handler, built on the method's first call and reused (building handlers and closures per call
cost more than the checks they carry)."""

from __future__ import annotations

from collections.abc import Callable

import grpc


class PerMethodInterceptor(grpc.ServerInterceptor):
    """Serves every method `applies` accepts through `wrap(handler, method)`, built once."""

    def __init__(self) -> None:
        # method -> (the handler grpc found, its wrapped copy); only methods the server
        # serves get here, so it stays bounded.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def applies(self, method: str) -> bool:
        """Whether calls of `method` go through `wrap`; the others are served as they are."""
        return True

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        raise NotImplementedError

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails):  # type: ignore[no-untyped-def]
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not self.applies(method):
            return handler
        wrapped = self._wrapped.get(method)
        if wrapped is None or wrapped[0] is not handler:
            wrapped = (handler, self.wrap(handler, method))
            self._wrapped[method] = wrapped
        return wrapped[1]


def replace_behaviour(handler: grpc.RpcMethodHandler, wrap: Callable) -> grpc.RpcMethodHandler:
    """Wrap whichever behaviour the handler has (unary or streaming), keeping its serializers.

    For interceptors inside the Authenticator (vault.api.restore_gate): the Authenticator,
    outermost, then serves the result with its own reading and decoding (vault.api.decoding)."""
    for kind, factory in (
        ("unary_unary", grpc.unary_unary_rpc_method_handler),
        ("unary_stream", grpc.unary_stream_rpc_method_handler),
        ("stream_unary", grpc.stream_unary_rpc_method_handler),
        ("stream_stream", grpc.stream_stream_rpc_method_handler),
    ):
        behaviour = getattr(handler, kind)
        if behaviour is not None:
            return factory(wrap(behaviour), handler.request_deserializer, handler.response_serializer)
    return handler
