"""While the database is behind the checkpoint file (restored, not reconciled), PDV's own
services answer FAILED_PRECONDITION, and health says NOT_SERVING for them and overall.

The gate sits inside the authentication interceptor, so each refusal is written to the
access log under the caller's principal. Health and reflection stay open; the health
prober (vault.observability.health) reads the guard and reports NOT_SERVING while it blocks.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from vault.api.auth import current_principal
from vault.api.handlers import PerMethodInterceptor, replace_behaviour
from vault.services.lifecycle.restore import RestoreGuard

GATED_PREFIX = "/pdv.v1."


class RestoreGate(PerMethodInterceptor):
    def __init__(self, guard: RestoreGuard) -> None:
        super().__init__()
        self._guard = guard

    def applies(self, method: str) -> bool:
        return method.startswith(GATED_PREFIX)

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        return replace_behaviour(handler, lambda behaviour: self._gate(behaviour, method))

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
