"""The per-call observer on a real gRPC server: streaming answers are timed until the stream
ends, an aborted call is counted under its status, and methods outside pdv.* pass untouched."""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
import pytest

from vault.api.observe import CallObserver
from vault.observability.metrics import Metrics


def _identity(b: bytes) -> bytes:
    return b


class _Echo(grpc.GenericRpcHandler):
    def service(self, handler_call_details):  # type: ignore[no-untyped-def]
        method = handler_call_details.method
        if method.endswith("/Stream"):
            return grpc.unary_stream_rpc_method_handler(lambda req, ctx: iter([req] * 3), _identity, _identity)
        if method.endswith("/Fail"):
            def fail(req, ctx):  # type: ignore[no-untyped-def]
                ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
            return grpc.unary_unary_rpc_method_handler(fail, _identity, _identity)
        return None


def test_streams_failures_and_other_services(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=[CallObserver(metrics)])
    server.add_generic_rpc_handlers([_Echo()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    caplog.set_level(logging.INFO, logger="pdv.rpc")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stream = channel.unary_stream("/pdv.v1.EchoService/Stream", _identity, _identity)
            assert list(stream(b"x", timeout=10)) == [b"x"] * 3
            with pytest.raises(grpc.RpcError) as failed:
                channel.unary_unary("/pdv.v1.EchoService/Fail", _identity, _identity)(b"x", timeout=10)
            assert failed.value.code() == grpc.StatusCode.NOT_FOUND
            assert list(channel.unary_stream("/other.Echo/Stream", _identity, _identity)(b"y", timeout=10)) == [b"y"] * 3
    finally:
        server.stop(None)
    sample = metrics.registry.get_sample_value
    assert sample("pdv_rpc_calls_total", {"method": "EchoService/Stream", "code": "OK"}) == 1
    assert sample("pdv_rpc_calls_total", {"method": "EchoService/Fail", "code": "NOT_FOUND"}) == 1
    assert sample("pdv_rpc_duration_seconds_count", {"method": "EchoService/Stream"}) == 1
    assert sample("pdv_rpc_calls_total", {"method": "Echo/Stream", "code": "OK"}) is None  # not a PDV service
    lines = [r.getMessage() for r in caplog.records if r.name == "pdv.rpc"]
    assert [line.split()[:2] for line in lines] == [["EchoService/Stream", "OK"], ["EchoService/Fail", "NOT_FOUND"]]
