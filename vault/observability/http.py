"""The metrics HTTP server: `/metrics` (Prometheus text format) and `/ready` (200 / 503).

On its own port (metrics_address), apart from gRPC: a load balancer or kubelet that speaks
HTTP gets the same readiness as grpc.health.v1, and a scrape never competes with calls for
the gRPC worker threads. It serves no personal data and takes no credentials; bind it where
only the monitoring network reaches it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from vault.observability.health import HealthState

log = logging.getLogger("pdv.metrics")


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # one line per scrape would drown the log


class MetricsServer:
    """Serves `registry` and the readiness of `health()` on host:port until stopped."""

    def __init__(self, address: str, registry: CollectorRegistry, health: Callable[[], HealthState | None]) -> None:
        host, _, port = address.rpartition(":")
        metrics = make_wsgi_app(registry)

        def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == "/ready":
                return _ready(health(), start_response)
            return metrics(environ, start_response)

        self._httpd = make_server(host.strip("[]"), int(port), app, _Server, handler_class=_QuietHandler)
        self.port: int = self._httpd.server_address[1]
        self.address_host = host.strip("[]")
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="pdv-metrics", daemon=True)

    def start(self) -> "MetricsServer":
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics, readiness on /ready", self._httpd.server_address[0], self.port)
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


def _ready(state: HealthState | None, start_response: Callable) -> Iterable[bytes]:
    if state is None or state.serving:
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"ready\n"]
    start_response("503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")])
    return [f"not ready: {state.describe()}\n".encode()]
