"""Authentication: one interceptor names the principal of every call, unary or streaming.

Credentials, in order:
1. an ``x-api-key`` header, if the call sends one (over plaintext loopback or TLS): a known
   key names its principal, an unknown one is UNAUTHENTICATED — never a fallback;
2. otherwise, on a TLS connection, the client certificate (vault.tls.principal_of). The
   TLS handshake already checked it against tls_client_ca_file, so a missing, expired or
   foreign certificate never reaches here (the client sees UNAVAILABLE). A certificate
   that names no principal is UNAUTHENTICATED; one whose principal is not in
   ``tls_principals`` (when set) is PERMISSION_DENIED.

Before either, a client certificate the CRL (tls_crl_file) revokes is UNAUTHENTICATED,
whatever else the call brings: the TLS stack cannot check CRLs itself.

Every refusal is written to the access log (vault.services.auth_log.RefusalLog) before
the call is aborted; the caller is refused whether or not that write succeeds.

Interceptors see no servicer context and so no peer certificate; the check therefore runs
inside the wrapped handler behaviour, where `context.auth_context()` is available. The
request is read and decoded there too, after the check (vault.api.decoding): an
unauthenticated caller is refused before its message is read, and bytes that are not a
valid request (or hold an unknown enum value) get INVALID_ARGUMENT, one server-log line
and, from an authenticated caller, an access-log refusal (action "decode"). Health and
reflection need no credentials; their requests are decoded the same way.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

import grpc

from vault.api.decoding import BadRequest, RequestReader, release_memory, stream_handler, trim_soon
from vault.api.handlers import PerMethodInterceptor
from vault.api.observe import current_call
from vault.crl import RevocationList
from vault.domain import Principal
from vault.services.auth_log import BAD_REQUEST, DECODE, DENIED, INVALID, UNAUTHENTICATED, RefusalLog
from vault.tls import principal_of_pem

API_KEY_HEADER = "x-api-key"
_OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")

log = logging.getLogger("pdv.auth")

current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("current_principal")


class Authenticator(PerMethodInterceptor):
    """Sets `current_principal` for each call, or aborts it; credentials are never logged.

    Keys are compared by SHA-256: API keys are long random strings, so a fast hash is
    enough, and a dictionary lookup on the digest leaks nothing useful through timing.
    """

    def __init__(self, principals_by_sha256: Mapping[str, str], tls_principals: Collection[str] | None = None,
                 refusals: RefusalLog | None = None, revocations: RevocationList | None = None) -> None:
        self._principals = dict(principals_by_sha256)
        self._allowed = None if tls_principals is None else frozenset(tls_principals)
        self._refusals = refusals
        self._revocations = revocations
        super().__init__()

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        authenticated = not method.startswith(_OPEN_SERVICES)
        return stream_handler(handler, lambda behaviour, reader: self._guard(
            behaviour, reader, method, handler.response_streaming, authenticated=authenticated))

    def authenticate(self, api_key: str | None, context: grpc.ServicerContext, method: str = "") -> Principal:
        """The caller's principal, or log the refusal and abort the call (UNAUTHENTICATED / PERMISSION_DENIED)."""
        pems = context.auth_context().get("x509_pem_cert")
        pem = pems[0] if pems else None
        if pem is not None and self._revocations is not None and self._revocations.is_revoked(pem):
            self._refuse(context, method, "certificate_revoked", "client certificate revoked", principal=principal_of_pem(pem))
        if api_key is not None:
            name = self._principals.get(hashlib.sha256(api_key.encode()).hexdigest())
            if name is None:
                self._refuse(context, method, "unknown_api_key", "missing or unknown API key")
            return Principal(name)
        if pem is None:
            self._refuse(context, method, "no_credentials", "missing or unknown API key")
        name = principal_of_pem(pem)
        if name is None:
            self._refuse(context, method, "no_principal_in_certificate", "the client certificate names no principal")
        if self._allowed is not None and name not in self._allowed:
            self._refuse(context, method, "principal_not_accepted", "this certificate's principal is not accepted",
                         principal=name, code=grpc.StatusCode.PERMISSION_DENIED)
        return Principal(name)

    def _refuse(self, context: grpc.ServicerContext, method: str, reason: str, message: str,
                principal: str | None = None, code: grpc.StatusCode = grpc.StatusCode.UNAUTHENTICATED) -> None:
        """Record the refusal in the access log, then abort (raises)."""
        trim_soon()  # grpc may have buffered part of the unread message: give it back once freed
        if self._refusals is not None:
            outcome = DENIED if code is grpc.StatusCode.PERMISSION_DENIED else UNAUTHENTICATED
            self._refusals.record(method, reason, principal, outcome)
        context.abort(code, message)

    def _guard(self, behaviour: Callable, reader: RequestReader, method: str, streaming_response: bool,
               authenticated: bool = True) -> Callable:
        """The behaviour, run only after the caller is authenticated and its request decoded."""

        def enter(raw_requests: Iterator[bytes], context: grpc.ServicerContext) -> tuple[Any, int, contextvars.Token | None]:
            principal = self.authenticate(_api_key(context.invocation_metadata()), context, method) if authenticated else None
            token = current_principal.set(principal) if principal is not None else None
            record = current_call.get(None)
            if record is not None and principal is not None:
                record.principal = principal.name  # for the call's one log line (vault.api.observe)
            try:
                if reader.request_streaming:
                    return self._decoded_stream(reader, raw_requests, context, method, principal), 0, token
                request, size = reader.one(raw_requests)
                return request, size, token
            except BadRequest as exc:
                leave(exc.size, token)
                self._reject(context, method, principal, str(exc))
                raise  # unreachable: _reject aborts

        def leave(size: int, token: contextvars.Token | None) -> None:
            if token is not None:
                current_principal.reset(token)
            release_memory(size)

        if streaming_response:
            # Streaming responses run while the generator is consumed, after the behaviour returns.
            def stream(raw_requests, context):  # type: ignore[no-untyped-def]
                request, size, token = enter(raw_requests, context)
                try:
                    yield from behaviour(request, context)
                finally:
                    del request
                    leave(size, token)

            return stream

        def call(raw_requests, context):  # type: ignore[no-untyped-def]
            request, size, token = enter(raw_requests, context)
            try:
                return behaviour(request, context)
            finally:
                del request
                leave(size, token)

        return call

    def _decoded_stream(self, reader: RequestReader, raw_requests: Iterator[bytes], context: grpc.ServicerContext,
                        method: str, principal: Principal | None) -> Iterator[Any]:
        for raw in raw_requests:
            try:
                yield reader.decode(raw)
            except BadRequest as exc:
                self._reject(context, method, principal, str(exc))

    def _reject(self, context: grpc.ServicerContext, method: str, principal: Principal | None, reason: str) -> None:
        """A request that is not a valid message: one log line, a refusal entry, INVALID_ARGUMENT (raises)."""
        log.warning("%s: bad request from %s: %s", method, principal.name if principal else "an open-service caller", reason)
        if self._refusals is not None and principal is not None:
            self._refusals.record(method, BAD_REQUEST, principal.name, INVALID, action=DECODE)
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad request to {method}: {reason}")


def _api_key(metadata: tuple | None) -> str | None:
    for key, value in metadata or ():
        if key == API_KEY_HEADER and isinstance(value, str):
            return value
    return None
