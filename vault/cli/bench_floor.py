"""`pdv bench`'s floor: what its client gets from a gRPC server that does no work at all.

A Python gRPC server that answers every TokenService call at once with an empty message,
built as `pdv serve` builds its own (thread pool size, message limits, mTLS when the bench
uses it, health service), runs in a process of its own; the bench sends it the same
serialized single-item calls, over the same kind of channel, as it sends PDV. The floor is
what this machine's transport and client allow a single call, so the bench shows how
much of a call's cost is PDV's work and how much is gRPC's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pdv_client.raw import wait_until_serving

from vault.config import Settings
from vault.keys.openbao import free_loopback_port

SERVICE = "pdv.v1.TokenService"
METHODS = ("Tokenize", "Detokenize", "Lookup")


class FloorServer:
    """The do-nothing server, in its own process, for the length of a `with` block."""

    def __init__(self, pki_files: tuple[Path, Path, Path] | None, credentials: grpc.ChannelCredentials | None) -> None:
        self.pki_files, self.credentials = pki_files, credentials  # (server cert, server key, client CA)
        self.target = f"127.0.0.1:{free_loopback_port()}"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "FloorServer":
        tls = [str(p) for p in self.pki_files] if self.pki_files else []
        self._proc = subprocess.Popen([sys.executable, "-m", "vault.cli.bench_floor", self.target, *tls])
        wait_until_serving(self.target, 30, alive=lambda: self._proc is not None and self._proc.poll() is None,
                           credentials=self.credentials)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=30)


def serve(target: str, tls_files: list[str]) -> None:
    settings = Settings.model_fields
    limit = settings["max_message_bytes"].default
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings["max_workers"].default),
        options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)],
    )
    empty = grpc.unary_unary_rpc_method_handler(lambda _request, _context: b"")
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, dict.fromkeys(METHODS, empty))])
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if tls_files:
        cert, key, ca = (Path(p).read_bytes() for p in tls_files)
        server.add_secure_port(target, grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True))
    else:
        server.add_insecure_port(target)
    server.start()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target")
    parser.add_argument("tls_files", nargs="*", help="server certificate, server key, client CA (PEM)")
    args = parser.parse_args()
    serve(args.target, args.tls_files)
