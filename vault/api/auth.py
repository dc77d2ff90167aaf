"""Authentication: one interceptor names the principal of every call (API keys for now)."""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Callable, Mapping

import grpc

from vault.domain import Principal

API_KEY_HEADER = "x-api-key"
_OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")

current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("current_principal")


class ApiKeyAuthenticator(grpc.ServerInterceptor):
    """Rejects calls without a known API key with UNAUTHENTICATED; the key is never logged.

    Keys are compared by SHA-256: API keys are long random strings, so a fast hash is
    enough, and a dictionary lookup on the digest leaks nothing useful through timing.
    """

    def __init__(self, principals_by_sha256: Mapping[str, str]) -> None:
        self._principals = dict(principals_by_sha256)

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails):  # type: ignore[no-untyped-def]
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(_OPEN_SERVICES):
            return handler
        principal = self._principal(handler_call_details.invocation_metadata)
        if principal is None:
            return _deny(handler)
        return _with_principal(handler, Principal(principal))

    def _principal(self, metadata: tuple) -> str | None:
        for key, value in metadata or ():
            if key == API_KEY_HEADER and isinstance(value, str):
                return self._principals.get(hashlib.sha256(value.encode()).hexdigest())
        return None


def _deny(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    def abort(_request, context):  # type: ignore[no-untyped-def]
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or unknown API key")

    return _replace(handler, lambda _behaviour: abort)


def _with_principal(handler: grpc.RpcMethodHandler, principal: Principal) -> grpc.RpcMethodHandler:
    def wrap(behaviour):  # type: ignore[no-untyped-def]
        def call(request, context):  # type: ignore[no-untyped-def]
            token = current_principal.set(principal)
            try:
                return behaviour(request, context)
            finally:
                current_principal.reset(token)

        return call

    return _replace(handler, wrap)


def _replace(handler: grpc.RpcMethodHandler, wrap: Callable) -> grpc.RpcMethodHandler:
    """Wrap whichever behaviour the handler has (unary or streaming), keeping its serializers."""
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
