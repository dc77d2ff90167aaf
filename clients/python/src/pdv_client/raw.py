"""Lower-level helpers: readiness checks and pre-serialized calls (for load generators)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pdv_client.client import API_KEY_METADATA
from pdv_client.errors import error_for_status

_METHODS = {
    "Tokenize": "TokenService", "Detokenize": "TokenService", "Lookup": "TokenService",
    "ShredSubjects": "SubjectService", "ShredFields": "SubjectService",
}


def wait_until_serving(
    target: str, timeout: float = 30.0, alive: Callable[[], bool] | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> None:
    """Block until the server at `target` reports SERVING on grpc.health.v1.

    Raises:
        TimeoutError: not serving within `timeout` seconds.
        RuntimeError: `alive()` returned False (the server process died).
    """
    deadline = time.monotonic() + timeout
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if alive is not None and not alive():
                raise RuntimeError(f"the server for {target} exited before serving")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"{target} was not serving within {timeout:.0f}s")


class RawTokenCalls:
    """TokenService (and SubjectService shred) calls that take and return serialized messages.

    A load generator serializes its requests before it starts the clock, so that what
    it measures is the server, not its own protobuf work.
    """

    def __init__(
        self, target: str, *, api_key: str | None = None, credentials: grpc.ChannelCredentials | None = None,
        options: list[tuple[str, Any]] | None = None,
    ) -> None:
        if credentials is not None:
            self._channel = grpc.secure_channel(target, credentials, options=options or [])
        else:
            self._channel = grpc.insecure_channel(target, options=options or [])
        self._metadata = ((API_KEY_METADATA, api_key),) if api_key else ()
        self._calls = {m: self._channel.unary_unary(f"/pdv.v1.{svc}/{m}") for m, svc in _METHODS.items()}

    def __repr__(self) -> str:
        return "RawTokenCalls(<api key redacted>)"

    def call(self, method: str, body: bytes, timeout: float | None = 60.0) -> bytes:
        """Send one serialized request to `method` (e.g. "Tokenize"); raise the mapped PdvError."""
        try:
            return self._calls[method](body, metadata=self._metadata, timeout=timeout)
        except grpc.RpcError as err:
            raise error_for_status(err) from err

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "RawTokenCalls":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
