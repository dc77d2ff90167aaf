"""While the database is behind the checkpoint file (restored, not reconciled), PDV's own
services answer FAILED_PRECONDITION, and health says NOT_SERVING for them and overall.

The gate sits inside the authentication interceptor, so each refusal is written to the
access log under the caller's principal. Health and reflection stay open.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2

from vault.api.auth import _replace, current_principal
from vault.services.lifecycle.restore import RestoreGuard

GATED_PREFIX = "/pdv.v1."


class RestoreGate(grpc.ServerInterceptor):
    def __init__(self, guard: RestoreGuard) -> None:
        self._guard = guard
        self._gated: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails):  # type: ignore[no-untyped-def]
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(GATED_PREFIX):
            return handler
        gated = self._gated.get(method)
        if gated is None or gated[0] is not handler:
            gated = (handler, _replace(handler, lambda behaviour: self._gate(behaviour, method)))
            self._gated[method] = gated
        return gated[1]

    def _gate(self, behaviour: Callable, method: str) -> Callable:
        guard = self._guard

        def call(request, context):  # type: ignore[no-untyped-def]
            message = guard.message
            if message is not None:
                principal = current_principal.get(None)
                guard.refuse(principal.name if principal is not None else "-", method)
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, message)
            return behaviour(request, context)

        return call


def publish_health(guard: RestoreGuard | None, servicer: health.HealthServicer, names: tuple[str, ...]) -> None:
    """Set health for the overall server ("") and `names`: NOT_SERVING while the guard blocks,
    SERVING otherwise; while blocked, the guard's thread turns them SERVING once reconciled."""
    def set_all(status: int) -> None:
        for name in ("", *names):
            servicer.set(name, status)

    if guard is None or guard.message is None:
        set_all(health_pb2.HealthCheckResponse.SERVING)
        return
    set_all(health_pb2.HealthCheckResponse.NOT_SERVING)
    guard.watch(lambda: set_all(health_pb2.HealthCheckResponse.SERVING))
