"""The outermost interceptor: each PDV call counted, timed and logged once.

Per call: the Prometheus counter (method, status) and latency histogram, and one line on
the `pdv.rpc` logger with request id, principal, method, status and duration (fields of
their own in JSON logs). The request id is the caller's `x-request-id` header when it is a
plain id (letters, digits, `.`, `_`, `-`, at most 64), else a new one; it goes back in the
trailing metadata either way, so a caller can quote it. Nothing of the request or answer is
read: no value, token or subject id can reach a label or a log field from here.

Outermost, so refusals by the drain and the authenticator are counted too; the principal is
learnt from the authenticator through the call's record (`current_call`), since the
authenticator runs inside this one.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import time
from collections.abc import Callable

import grpc

from vault.api.handlers import PerMethodInterceptor
from vault.observability.metrics import Metrics

REQUEST_ID_HEADER = "x-request-id"
_PLAIN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_OBSERVED = "/pdv."

log = logging.getLogger("pdv.rpc")


class CallRecord:
    """What the per-call log line says; the authenticator fills in the principal."""

    __slots__ = ("request_id", "principal")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.principal = "-"


current_call: contextvars.ContextVar[CallRecord] = contextvars.ContextVar("current_call")


class CallObserver(PerMethodInterceptor):
    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self._metrics = metrics

    def applies(self, method: str) -> bool:
        return method.startswith(_OBSERVED)  # health checks and reflection would drown the numbers

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        name = method.rpartition("/")[2]  # "Tokenize": the service is implied by the method name
        service = method[1:].partition("/")[0].rpartition(".")[2]  # "TokenService"
        label = f"{service}/{name}"
        record_rpc = self._metrics.rpc

        def begin(context: grpc.ServicerContext) -> tuple[CallRecord, contextvars.Token, float]:
            record = CallRecord(_request_id(context.invocation_metadata()))
            context.set_trailing_metadata(((REQUEST_ID_HEADER, record.request_id),))
            return record, current_call.set(record), time.perf_counter()

        def end(context: grpc.ServicerContext, record: CallRecord, token: contextvars.Token, started: float,
                failed: bool) -> None:
            seconds = time.perf_counter() - started
            try:
                current_call.reset(token)
            except ValueError:
                pass  # a streaming answer's generator closed from another context: nothing of ours is left set
            code = context.code()
            status = code.name if code is not None else ("UNKNOWN" if failed else "OK")
            record_rpc(label, status, seconds)
            if log.isEnabledFor(logging.INFO):
                log.info("%s %s %.1fms principal=%s request_id=%s", label, status, seconds * 1000, record.principal,
                         record.request_id, extra={"request_id": record.request_id, "principal": record.principal,
                                                   "method": label, "code": status,
                                                   "duration_ms": round(seconds * 1000, 3)})

        return _observed_handler(handler, begin, end)


def _request_id(metadata: tuple | None) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str) and _PLAIN_ID.fullmatch(value):
            return value
    return os.urandom(8).hex()  # 16 hex digits: unique enough to find one call in a day's log


def _observed_handler(handler: grpc.RpcMethodHandler, begin: Callable, end: Callable) -> grpc.RpcMethodHandler:
    """`handler` with its behaviour run between begin(context) and end(...)."""
    if handler.response_streaming:
        inner = handler.stream_stream if handler.request_streaming else handler.unary_stream

        def stream(request, context):  # type: ignore[no-untyped-def]
            record, token, started = begin(context)
            failed = True
            try:
                yield from inner(request, context)
                failed = False
            finally:
                end(context, record, token, started, failed)

        make = grpc.stream_stream_rpc_method_handler if handler.request_streaming else grpc.unary_stream_rpc_method_handler
        return make(stream, handler.request_deserializer, handler.response_serializer)
    inner = handler.stream_unary if handler.request_streaming else handler.unary_unary

    def call(request, context):  # type: ignore[no-untyped-def]
        record, token, started = begin(context)
        failed = True
        try:
            answer = inner(request, context)
            failed = False
            return answer
        finally:
            end(context, record, token, started, failed)

    make = grpc.stream_unary_rpc_method_handler if handler.request_streaming else grpc.unary_unary_rpc_method_handler
    return make(call, handler.request_deserializer, handler.response_serializer)
