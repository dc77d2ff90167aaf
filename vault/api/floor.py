"""The do-nothing gRPC server that `pdv bench` measures its floor against (vault.cli.bench_floor).

It answers every TokenService call at once with an empty message, and is built as
`create_server` builds PDV's (thread pool size, message limits, mTLS when given the
files, health service), so that what it costs a call is the transport's share alone.
Run as `python -m vault.api.floor HOST:PORT [CERT KEY CLIENT_CA]`.
"""

from __future__ import annotations

import argparse
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from vault.config import Settings

SERVICE = "pdv.v1.TokenService"
METHODS = ("Tokenize", "Detokenize", "Lookup")


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
