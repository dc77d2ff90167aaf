"""The authentication interceptor wraps every handler kind; streaming responses see the principal too."""

from __future__ import annotations

from types import SimpleNamespace

import grpc
import pytest

from vault.api.auth import Authenticator, current_principal
from vault.certs import make_ca, make_client_cert
from vault.config import hash_api_key


class Aborted(Exception):
    pass


class FakeContext:
    def __init__(self, pem: bytes | None = None, api_key: str | None = None) -> None:
        self._auth = {"x509_pem_cert": [pem]} if pem else {"transport_security_type": [b"insecure"]}
        self._metadata = (("x-api-key", api_key),) if api_key else ()
        self.code: grpc.StatusCode | None = None

    def auth_context(self) -> dict:
        return self._auth

    def invocation_metadata(self) -> tuple:
        return self._metadata

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        raise Aborted(details)


def intercepted(handler: grpc.RpcMethodHandler, allowed: list[str] | None = None,
                auth: Authenticator | None = None) -> grpc.RpcMethodHandler:
    auth = auth or Authenticator({}, allowed)
    return auth.intercept_service(lambda _d: handler, SimpleNamespace(method="/pdv.v1.X/Y", invocation_metadata=()))


def test_a_streaming_response_runs_under_the_certificates_principal() -> None:
    def numbers(_request, _context):  # type: ignore[no-untyped-def]
        for i in range(3):
            yield (i, current_principal.get().name)

    pem = make_client_cert(make_ca(), "gis-batch").cert_pem()
    handler = intercepted(grpc.unary_stream_rpc_method_handler(numbers))
    assert handler.unary_stream is None  # served as a stream of requests: the guard reads them itself
    assert list(handler.stream_stream(iter([b""]), FakeContext(pem))) == [(0, "gis-batch"), (1, "gis-batch"), (2, "gis-batch")]
    assert current_principal.get(None) is None


@pytest.mark.parametrize("factory", [grpc.unary_unary_rpc_method_handler, grpc.stream_unary_rpc_method_handler])
def test_each_kind_is_guarded_before_its_request_is_read(factory) -> None:  # type: ignore[no-untyped-def]
    handler = intercepted(factory(lambda _r, _c: current_principal.get().name))
    context = FakeContext()

    def requests():  # type: ignore[no-untyped-def]
        raise AssertionError("read before the caller was authenticated")
        yield b""

    with pytest.raises(Aborted):
        handler.stream_unary(requests(), context)
    assert context.code == grpc.StatusCode.UNAUTHENTICATED


def test_a_certificate_outside_the_allow_list_is_permission_denied_and_an_unknown_key_never_falls_back() -> None:
    pem = make_client_cert(make_ca(), "gis-batch").cert_pem()
    call = lambda _r, _c: "ran"  # noqa: E731
    context = FakeContext(pem)
    with pytest.raises(Aborted):
        intercepted(grpc.unary_unary_rpc_method_handler(call), allowed=["intake-311"]).stream_unary(iter([b""]), context)
    assert context.code == grpc.StatusCode.PERMISSION_DENIED
    context = FakeContext(pem, api_key="pdvk_wrong")
    with pytest.raises(Aborted):
        intercepted(grpc.unary_unary_rpc_method_handler(call)).stream_unary(iter([b""]), context)
    assert context.code == grpc.StatusCode.UNAUTHENTICATED


def test_the_guarded_handler_is_reused_and_each_call_is_checked_with_its_own_key() -> None:
    auth = Authenticator({hash_api_key("pdvk_intake"): "intake-311"})
    inner = grpc.unary_unary_rpc_method_handler(lambda _r, _c: current_principal.get().name)
    first, second = intercepted(inner, auth=auth), intercepted(inner, auth=auth)
    assert first is second  # built once per method, not per call
    assert first.stream_unary(iter([b""]), FakeContext(api_key="pdvk_intake")) == "intake-311"
    refused = FakeContext(api_key="pdvk_other")
    with pytest.raises(Aborted):
        second.stream_unary(iter([b""]), refused)  # the earlier caller's key is not remembered
    assert refused.code == grpc.StatusCode.UNAUTHENTICATED
    assert first.stream_unary(iter([b""]), FakeContext(api_key="pdvk_intake")) == "intake-311"
