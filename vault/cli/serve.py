"""`pdv serve` and `pdv db upgrade`."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path

from vault.api.server import PdvServer, create_server
from vault.bootstrap import bootstrap, disposal_service, rewrap_service
from vault.config import Settings, load_settings
from vault.errors import PdvError
from vault.observability import logs
from vault.services.disposal import DisposalJob
from vault.services.events.purge import EventPurgeJob
from vault.services.rewrap import RewrapJob
from vault.services.runtime.collector import tune_collector
from vault.storage import migrate
from vault.storage.engine import create_store_engine
from vault.tls import load_server_tls

log = logging.getLogger("pdv.serve")


def run_db_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    engine = create_store_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        print(f"database at revision {migrate.current_revision(engine)}")
    finally:
        engine.dispose()
    return 0


# The allocator setting `pdv serve` runs under unless the environment already names one. A
# burst of many-item calls (32 full tokenize and detokenize batches) left glibc's per-thread
# arenas fragmented, so malloc_trim could not give the memory back: measured on 2 cores, +94
# MiB over idle kept with the defaults, +70 with MALLOC_ARENA_MAX=2, +55 with PYTHONMALLOC=
# malloc as well. PYTHONMALLOC=malloc is not set: in paired `pdv bench` runs it cost warm
# detokenize 15% and lookup 26% of their throughput, for 15 MiB less kept.
ALLOCATOR_ENVIRONMENT = {"MALLOC_ARENA_MAX": "2"}


def allocator_reexec() -> None:
    """Re-execute this process with ALLOCATOR_ENVIRONMENT, if a variable of it is unset (an
    operator's own value is kept). Such variables are read only at libc start, so setting
    them here would be too late for this process; exec keeps its pid, so a supervisor sees
    one process."""
    missing = {k: v for k, v in ALLOCATOR_ENVIRONMENT.items() if k not in os.environ}
    if missing and getattr(sys, "orig_argv", None):
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, **missing})


def add_log_format_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-format", choices=("text", "json"), default=None,
                        help="server log lines as readable text or JSON lines (default: the log_format setting, text)")


def log_format_of(args: argparse.Namespace, settings: Settings) -> logs.LogFormat:
    """--log-format if given, else the log_format setting."""
    return getattr(args, "log_format", None) or settings.log_format


def run_serve(args: argparse.Namespace) -> int:
    allocator_reexec()
    settings = load_settings(args.config)
    log_format = log_format_of(args, settings)
    logs.configure(log_format)
    if settings.processes == 1:
        serve_until_signalled(settings)
        return 0
    return serve_processes(args.config, settings, log_format)


def serve_processes(config: Path | None, settings: Settings, log_format: logs.LogFormat = "text") -> int:
    """Run `processes` servers on one port (SO_REUSEPORT): Python's GIL caps one process at
    one core. Each worker is a full, stateless replica; the kernel spreads connections.
    SIGTERM/SIGINT drain every worker; if one dies, the rest are stopped too, so the
    supervisor sees the failure instead of a quietly shrunken pool."""
    # spawn, not fork: a forked child must not inherit any gRPC or database state.
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_worker, args=(config, i, log_format), name=f"pdv-worker-{i}")
               for i in range(settings.processes)]
    for worker in workers:
        worker.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # A policy reload reaches every worker.
    signal.signal(signal.SIGHUP, lambda *_: [os.kill(w.pid, signal.SIGHUP) for w in workers if w.is_alive()])  # type: ignore[arg-type]
    while not stop.is_set() and all(w.is_alive() for w in workers):
        stop.wait(0.5)
    failed = [w.name for w in workers if not w.is_alive() and w.exitcode not in (0, None)]
    for worker in workers:
        if worker.is_alive():
            os.kill(worker.pid, signal.SIGTERM)  # type: ignore[arg-type]
    for worker in workers:
        worker.join(settings.shutdown_grace_seconds + 5)
    if failed:
        log.error("worker(s) exited unexpectedly: %s", ", ".join(failed))
        return 1
    return 0


def _worker(config: Path | None, index: int = 0, log_format: logs.LogFormat = "text") -> None:
    logs.configure(log_format)
    settings = load_settings(config)
    if settings.metrics_address is not None:
        # Each worker has its own numbers: worker i serves them on the configured port + i.
        host, _, port = settings.metrics_address.rpartition(":")
        settings = settings.model_copy(update={"metrics_address": f"{host}:{int(port) + index}"})
    serve_until_signalled(settings)


def serve_until_signalled(settings: Settings, on_ready=None) -> None:  # type: ignore[no-untyped-def]
    """Serve until SIGINT/SIGTERM, then drain in-flight calls for the grace period."""
    load_server_tls(settings)  # check the TLS files before connecting to anything
    app = bootstrap(settings)
    server = create_server(app)
    # What bootstrap built lives as long as the process: frozen out of the collector's passes,
    # which otherwise pause every call while they walk it (p99 of single calls), and the
    # youngest generation collected less often (vault/services/runtime/collector.py).
    tune_collector()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGHUP] = reload_policy_on_sighup(app, server)
    disposal = start_disposal_job(app, settings)
    rewrap = start_rewrap_job(app, settings)
    purge = EventPurgeJob(app.store, timedelta(seconds=settings.event_retention_seconds), app.shredder.clock,
                          settings.event_purge_interval_seconds)
    purge.start()
    try:
        if on_ready is not None:
            on_ready(server)
        stop.wait()
        log.info("shutting down: draining in-flight calls for up to %.0fs", settings.shutdown_grace_seconds)
    finally:
        for job in (disposal, rewrap, purge):
            if job is not None:
                job.stop()
        _shutdown(server, app)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def start_disposal_job(app, settings: Settings) -> DisposalJob | None:  # type: ignore[no-untyped-def]
    """The scheduled disposal job, started once the server is up (None when
    disposal_interval_seconds is 0). Every replica starts one; a database lock lets one run
    at a time (PostgreSQL advisory lock; SQLite's single writer)."""
    if settings.disposal_interval_seconds <= 0:
        return None
    job = DisposalJob(disposal_service(app), settings.disposal_interval_seconds)
    if app.state is not None:
        app.state.watch_disposal(job)
    job.start()
    return job


def start_rewrap_job(app, settings: Settings) -> RewrapJob | None:  # type: ignore[no-untyped-def]
    """The rewrap job (None when rewrap_interval_seconds is 0): every interval, stored keys below
    the KEK's latest version are rewrapped to it with the service token. Every replica starts
    one; a database lock lets one run at a time."""
    if settings.rewrap_interval_seconds <= 0:
        return None
    job = RewrapJob(rewrap_service(app), app.store, settings.rewrap_interval_seconds)
    if app.state is not None:
        app.state.watch_rewrap(job)
    job.start()
    return job


def reload_policy_on_sighup(app, server: PdvServer | None = None):  # type: ignore[no-untyped-def]
    """Make SIGHUP re-read the policy file and the server's CRL (main thread only); returns
    the previous handler."""
    return signal.signal(signal.SIGHUP, lambda *_: reload_policy(app, server))


def reload_policy(app, server: PdvServer | None = None) -> bool:  # type: ignore[no-untyped-def]
    """Swap in the policy file, and tls_crl_file if the server has one, as they are now; a bad
    file leaves the one in force (and says why). True if everything was taken."""
    taken = True
    try:
        policy = app.access.holder.reload()
    except PdvError as exc:
        log.error("policy not reloaded, the previous one stays in force: %s", exc)
        taken = False
    else:
        for warning in policy.warnings:
            log.warning("%s", warning)
        log.info("policy reloaded from %s", policy.source)
    revocations = server.revocations if server is not None else None
    if revocations is not None:
        try:
            revoked = revocations.reload()
        except PdvError as exc:
            log.error("CRL not reloaded, the previous one stays in force: %s", exc)
            return False
        log.info("CRL reloaded from %s: %d revoked certificate(s)", revocations.path, revoked)
    return taken


def _shutdown(server: PdvServer, app) -> None:  # type: ignore[no-untyped-def]
    server.stop()
    app.close()
