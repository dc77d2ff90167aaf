"""Request bytes that are not a valid request: INVALID_ARGUMENT after authentication, one
server-log line (no traceback), an access-log refusal; unknown enum values likewise."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2
from pdv.v1 import token_pb2 as pb
from sqlalchemy import text

from tests.support.stack import PRINCIPAL, Stack

TOKENIZE = "/pdv.v1.TokenService/Tokenize"
GARBAGE = b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"  # a length prefix far past the end


def call_raw(stack: Stack, method: str, payload: bytes, api_key: str | None) -> grpc.RpcError:
    """Send `payload` as the request bytes of `method`; the error the server answers with."""
    with grpc.insecure_channel(stack.target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        metadata = [("x-api-key", api_key)] if api_key else []
        with pytest.raises(grpc.RpcError) as exc_info:
            call(payload, metadata=metadata, timeout=10)
    return exc_info.value


def log_rows(stack: Stack, action: str) -> list[tuple]:
    with stack.app.store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            text("SELECT principal, purpose, field, outcome FROM access_log WHERE action = :a ORDER BY id"), {"a": action})]


def stored_values(stack: Stack) -> int:
    with stack.app.store.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM field_values")).scalar_one()


def test_garbage_from_an_authenticated_caller_is_invalid_argument_logged_once_without_traceback(stack: Stack) -> None:
    error = call_raw(stack, TOKENIZE, GARBAGE, stack.api_key)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"bad request to {TOKENIZE}: the request could not be decoded"
    server_log = stack.log.getvalue()
    assert "Traceback" not in server_log and "Exception deserializing" not in server_log
    (line,) = [line for line in server_log.splitlines() if "could not be decoded" in line]
    assert TOKENIZE in line and PRINCIPAL in line
    assert log_rows(stack, "decode") == [(PRINCIPAL, TOKENIZE, "undecodable_request", "invalid")]
    assert log_rows(stack, "authenticate") == []


def test_garbage_without_credentials_is_unauthenticated_and_never_decoded(stack: Stack) -> None:
    for api_key in (None, "pdvk_wrong"):
        error = call_raw(stack, TOKENIZE, GARBAGE, api_key)
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert [row[3] for row in log_rows(stack, "authenticate")] == ["unauthenticated", "unauthenticated"]
    assert log_rows(stack, "decode") == []
    assert "could not be decoded" not in stack.log.getvalue() and "Traceback" not in stack.log.getvalue()


def test_an_unknown_batch_mode_is_refused_not_read_as_atomic(stack: Stack) -> None:
    request = pb.TokenizeRequest(request_id="r-99", purpose="benefits_eligibility", source="311",
                                 records=[pb.Record(fields={"email": "ada@example.org"})])
    payload = request.SerializeToString() + b"\x30\x63"  # field 6 (mode), varint 99
    assert pb.TokenizeRequest.FromString(payload).mode == 99  # proto3 keeps the unknown number
    error = call_raw(stack, TOKENIZE, payload, stack.api_key)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "mode: unknown value 99 of pdv.v1.BatchMode" in error.details()
    assert stored_values(stack) == 0
    assert log_rows(stack, "decode") == [(PRINCIPAL, TOKENIZE, "undecodable_request", "invalid")]
    # Every declared mode still works.
    for mode in (pb.BATCH_MODE_UNSPECIFIED, pb.BATCH_MODE_ATOMIC, pb.BATCH_MODE_PARTIAL):
        request.mode, request.request_id = mode, f"r-{mode}"
        with grpc.insecure_channel(stack.target) as channel:
            call = channel.unary_unary(TOKENIZE, request_serializer=None, response_deserializer=pb.TokenizeResponse.FromString)
            (result,) = call(request.SerializeToString(), metadata=[("x-api-key", stack.api_key)], timeout=10).results
        assert result.tokens["email"]


def test_an_open_service_answers_garbage_with_invalid_argument(stack: Stack) -> None:
    error = call_raw(stack, "/grpc.health.v1.Health/Check", GARBAGE, None)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "Traceback" not in stack.log.getvalue()
    with grpc.insecure_channel(stack.target) as channel:  # and a valid health check still is one
        check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=None,
                                    response_deserializer=health_pb2.HealthCheckResponse.FromString)
        assert check(health_pb2.HealthCheckRequest().SerializeToString(), timeout=10).status == \
            health_pb2.HealthCheckResponse.SERVING
