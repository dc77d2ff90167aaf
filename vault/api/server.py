"""Builds the gRPC server: services, health, reflection, authentication, graceful stop."""

from __future__ import annotations

import logging
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pdv.v1 import (
    admin_pb2, admin_pb2_grpc, disclosure_pb2, disclosure_pb2_grpc, event_pb2, event_pb2_grpc, request_pb2, request_pb2_grpc, subject_pb2,
    subject_pb2_grpc, token_pb2, token_pb2_grpc,
)

from vault.api.admin_servicer import AdminServicer
from vault.api.auth import Authenticator
from vault.api.disclosure_servicer import DisclosureServicer
from vault.api.drain import Drain
from vault.api.event_servicer import EventServicer
from vault.api.health import publish_health
from vault.api.observe import CallObserver
from vault.api.reflection import enable_reflection
from vault.api.request_servicer import RequestServicer
from vault.api.restore_gate import RestoreGate
from vault.api.subject_servicer import SubjectServicer
from vault.api.token_servicer import TokenServicer
from vault.bootstrap import App, admin_service
from vault.config import is_loopback
from vault.crl import RevocationList
from vault.errors import ConfigError
from vault.observability.health import HealthProber
from vault.observability.http import MetricsServer
from vault.tls import ServerTls, load_server_tls

log = logging.getLogger("pdv.server")


class PdvServer:
    """A running server: its bound port, and a stop that drains in-flight calls."""

    def __init__(self, server: grpc.Server, port: int, health_servicer: health.HealthServicer, grace: float,
                 revocations: RevocationList | None = None, drain: Drain | None = None,
                 prober: HealthProber | None = None, metrics: MetricsServer | None = None,
                 events: EventServicer | None = None) -> None:
        self.server, self.port, self._health, self._grace = server, port, health_servicer, grace
        self.revocations = revocations  # tls_crl_file; reloaded with the policy
        self._drain = drain
        self._prober = prober
        self.metrics = metrics  # the /metrics and /ready HTTP server, with metrics_address
        self.metrics_port = metrics.port if metrics is not None else None
        self._events = events  # its open subscriptions end when the drain begins

    def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, tell health checkers, let in-flight calls finish within the grace period.

        From the moment it is called, a new PDV call is refused with UNAVAILABLE (retryable)
        and health answers NOT_SERVING. grpc's own stop, which closes the port and sends
        clients GOAWAY, runs once the calls already in flight have finished (or the grace
        period is spent): begun earlier, it would cancel calls that cross its GOAWAY with
        CANCELLED, which a client does not retry (vault/api/drain.py). A call still running
        when the grace period ends is cancelled.
        """
        grace = self._grace if grace is None else grace
        deadline = time.monotonic() + grace
        if self._drain is not None:
            self._drain.refuse_new()  # first: once health says NOT_SERVING, no new call gets in
        if self._events is not None:
            self._events.stop()  # open subscriptions are not calls to wait for: they end, to resume elsewhere
        self._health.enter_graceful_shutdown()
        if self._prober is not None:
            self._prober.stop()
        if self._drain is not None:
            self._drain.wait_idle(grace)
        self.server.stop(max(0.0, deadline - time.monotonic())).wait()
        if self.metrics is not None:
            self.metrics.stop()  # last: a scrape during the drain still sees the calls finish

    def wait(self) -> None:
        self.server.wait_for_termination()


def create_server(app: App, address: str | None = None) -> PdvServer:
    """Build and start a server for `app` on `address` (port 0 picks a free one).

    With the TLS settings the port requires a client certificate signed by
    tls_client_ca_file (mTLS) and not revoked by tls_crl_file; without them it is
    plaintext (config allows that on loopback only). Raises ConfigError if the TLS files
    are missing or inconsistent, or the CRL is not signed by the client CA.
    """
    settings = app.settings
    tls = load_server_tls(settings)
    if tls is None and address is not None and not is_loopback(address):
        raise ConfigError(f"plaintext gRPC is only allowed on a loopback address, not {address}; configure TLS")
    limit = settings.max_message_bytes
    revocations = tls.revocations if tls is not None else None
    drain = Drain()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="pdv-rpc"),
        interceptors=[
            # outermost: every call counted and logged, the drain's and authenticator's refusals too
            *([CallObserver(app.metrics)] if app.metrics is not None else []),
            drain,  # a stopping server refuses before anything else runs
            Authenticator(settings.principal_for_key(), settings.tls_principals, app.refusals, revocations),
            *([RestoreGate(app.restore_guard)] if app.restore_guard is not None else []),  # inside: knows the caller
        ],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            # Several `processes` share one port on purpose; a lone server must not
            # silently share its port with a stray one.
            ("grpc.so_reuseport", 1 if settings.processes > 1 else 0),
        ],
        maximum_concurrent_rpcs=settings.max_workers * 8,
    )
    token_pb2_grpc.add_TokenServiceServicer_to_server(
        TokenServicer(app.tokenizer, app.detokenizer, app.finder, app.budget, app.translator), server
    )
    subject_pb2_grpc.add_SubjectServiceServicer_to_server(
        SubjectServicer(app.shredder, app.subject_access, app.consent, app.corrections, app.reports, app.budget), server
    )
    request_pb2_grpc.add_RequestServiceServicer_to_server(RequestServicer(app.requests), server)
    disclosure_pb2_grpc.add_DisclosureServiceServicer_to_server(DisclosureServicer(app.disclosure, app.budget), server)
    admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(admin_service(app), revocations), server)
    events = EventServicer(app.events, settings.event_poll_seconds) if app.events is not None else None
    if events is not None:
        event_pb2_grpc.add_EventServiceServicer_to_server(events, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service_names = (
        token_pb2.DESCRIPTOR.services_by_name["TokenService"].full_name,
        subject_pb2.DESCRIPTOR.services_by_name["SubjectService"].full_name,
        request_pb2.DESCRIPTOR.services_by_name["RequestService"].full_name,
        disclosure_pb2.DESCRIPTOR.services_by_name["DisclosureService"].full_name,
        admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
        event_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
    )
    enable_reflection(service_names, server)
    port = _add_port(server, address or settings.listen, tls)
    metrics = _start_metrics(app)
    server.start()
    prober = app.health
    if prober is not None:
        publish_health(prober, health_servicer, service_names[:-1])  # all but Health itself
        if app.restore_guard is not None:
            app.restore_guard.watch(prober.poke)  # a reconcile turns health SERVING at once
        prober.start()
    else:
        for name in ("", *service_names[:-1]):
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving on port %d (%s)", port, "mTLS" if tls else "plaintext, loopback")
    return PdvServer(server, port, health_servicer, settings.shutdown_grace_seconds, revocations, drain, prober, metrics,
                     events)


def _start_metrics(app: App) -> MetricsServer | None:
    """The /metrics and /ready HTTP server on metrics_address, if set (raises ConfigError if it cannot bind)."""
    address = app.settings.metrics_address
    if address is None or app.metrics is None:
        return None
    health = app.health
    try:
        server = MetricsServer(address, app.metrics.registry, lambda: health.state if health is not None else None)
    except OSError as exc:
        raise ConfigError(f"metrics_address {address}: cannot listen ({exc.strerror})") from None
    return server.start()


def _add_port(server: grpc.Server, address: str, tls: ServerTls | None) -> int:
    if tls is None:
        return server.add_insecure_port(address)
    credentials = grpc.ssl_server_credentials(
        [(tls.private_key.reveal(), tls.cert_chain)], root_certificates=tls.client_ca, require_client_auth=True
    )
    return server.add_secure_port(address, credentials)
