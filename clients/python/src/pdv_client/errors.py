"""Exceptions raised by PdvClient, one per gRPC status code the service uses.

Each class declares its ``grpc.StatusCode``; :func:`error_for_status` is the
one place that maps a status (a ``grpc.RpcError``, a ``grpc.StatusCode`` or a
per-item code number from a response) back to a class. Messages carry the
server's message only; the client never formats request values into them.
"""

from __future__ import annotations

from typing import ClassVar

import grpc

__all__ = [
    "PdvError",
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "Unauthenticated",
    "ResourceExhausted",
    "FailedPrecondition",
    "Unavailable",
    "OutOfRange",
    "DeadlineExceeded",
    "Internal",
    "error_for_status",
]


class PdvError(Exception):
    """Base of every error the PDV client raises for a non-OK status.

    Attributes:
        status: the gRPC status code (the class's own, or for a bare PdvError
            the code that had no dedicated class, e.g. UNIMPLEMENTED).
        message: the server's message.
        request_id: the request id of the failed call, when it had one
            (for a batched call, the id of the batch that failed).
    """

    status_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str = "",
        *,
        status: grpc.StatusCode | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status if status is not None else self.status_code
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.status.name}: {self.message}" if self.message else self.status.name


class InvalidArgument(PdvError):
    """A field, purpose or record was rejected (INVALID_ARGUMENT)."""

    status_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(PdvError):
    """The token or subject does not exist, or was shredded (NOT_FOUND)."""

    status_code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(PdvError):
    """The item already exists, e.g. a request id reused for other content (ALREADY_EXISTS)."""

    status_code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(PdvError):
    """The caller may not do this for this purpose or field (PERMISSION_DENIED)."""

    status_code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(PdvError):
    """Missing or invalid API key or client certificate (UNAUTHENTICATED)."""

    status_code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(PdvError):
    """Rate limit or batch size exceeded (RESOURCE_EXHAUSTED)."""

    status_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(PdvError):
    """The system is not in a state to serve this, e.g. key retired (FAILED_PRECONDITION)."""

    status_code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(PdvError):
    """The server or its key store is unreachable; retry later (UNAVAILABLE)."""

    status_code = grpc.StatusCode.UNAVAILABLE


class OutOfRange(PdvError):
    """A cursor older than the events the server keeps (OUT_OF_RANGE); the message says what to do."""

    status_code = grpc.StatusCode.OUT_OF_RANGE


class DeadlineExceeded(PdvError):
    """The call did not finish within its timeout (DEADLINE_EXCEEDED)."""

    status_code = grpc.StatusCode.DEADLINE_EXCEEDED


class Internal(PdvError):
    """The server failed unexpectedly (INTERNAL)."""

    status_code = grpc.StatusCode.INTERNAL


_BY_STATUS: dict[grpc.StatusCode, type[PdvError]] = {
    cls.status_code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        FailedPrecondition,
        Unavailable,
        OutOfRange,
        DeadlineExceeded,
        Internal,
    )
}
_BY_NUMBER: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


def error_for_status(
    status: grpc.RpcError | grpc.StatusCode | int,
    message: str = "",
    *,
    request_id: str | None = None,
) -> PdvError:
    """Return the PdvError subclass instance for a failed call or item.

    Args:
        status: a ``grpc.RpcError`` from a call (its code and details are used,
            ``message`` is ignored), a ``grpc.StatusCode``, or a status code
            number as found in per-item ``code`` fields.
        message: the server's message for a code or code number.
        request_id: the request id to attach, if any.

    Returns:
        An instance of the class declared for the code; a bare PdvError (with
        ``status`` set) for codes without a class. Callers raise it.

    Raises:
        ValueError: if the status is OK (0); OK is not an error.
    """
    if isinstance(status, grpc.RpcError):
        # Errors raised by a call are also grpc.Call objects; anything else
        # (e.g. a hand-made RpcError) carries no status and counts as UNKNOWN.
        code_fn = getattr(status, "code", None)
        details_fn = getattr(status, "details", None)
        code = code_fn() if callable(code_fn) else None
        message = (details_fn() if callable(details_fn) else None) or ""
        code = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
    elif isinstance(status, grpc.StatusCode):
        code = status
    else:
        code = _BY_NUMBER.get(int(status), grpc.StatusCode.UNKNOWN)
    if code is grpc.StatusCode.OK:
        raise ValueError("status OK is not an error")
    cls = _BY_STATUS.get(code, PdvError)
    return cls(message, status=code, request_id=request_id)
