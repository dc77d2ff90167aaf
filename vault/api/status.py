"""The one table from domain errors to gRPC status codes."""

from __future__ import annotations

import logging
import traceback
import uuid

import grpc

from vault import errors

log = logging.getLogger("pdv.api")

# Most specific first: the first matching class wins.
STATUS_BY_ERROR: tuple[tuple[type[errors.PdvError], grpc.StatusCode], ...] = (
    (errors.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.RequestIdReused, grpc.StatusCode.ALREADY_EXISTS),
    (errors.Conflict, grpc.StatusCode.ABORTED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.RateLimited, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.AnswerTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.DecryptionFailed, grpc.StatusCode.DATA_LOSS),
    (errors.ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.RotationRefused, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.InvalidTransition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.OutOfRange, grpc.StatusCode.OUT_OF_RANGE),
)


def status_for(error: BaseException) -> grpc.StatusCode:
    for cls, code in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL


def abort_with(context: grpc.ServicerContext, error: BaseException, method: str) -> None:
    """End the call with the mapped status. Unexpected errors get a generic message and an id.

    Domain messages are safe by construction (they never hold values); anything else may,
    so only its class name reaches the server log, and nothing of it reaches the caller.
    """
    code = status_for(error)
    if code is grpc.StatusCode.INTERNAL:
        incident = uuid.uuid4().hex[:12]
        # Frames only: a foreign exception's message (an SQL error's parameters, say) may hold values.
        frames = "".join(traceback.format_tb(error.__traceback__))
        log.error("internal error in %s: %s (incident %s)\n%s", method, type(error).__name__, incident, frames)
        context.abort(code, f"internal error (incident {incident})")
    log.info("%s -> %s", method, code.name)
    context.abort(code, str(error))
