"""`pdv serve` and `pdv db upgrade`."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from vault.api.server import PdvServer, create_server
from vault.bootstrap import bootstrap
from vault.config import Settings, load_settings
from vault.storage import migrate
from vault.storage.engine import create_store_engine

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


def run_serve(args: argparse.Namespace) -> int:
    serve_until_signalled(load_settings(args.config))
    return 0


def serve_until_signalled(settings: Settings, on_ready=None) -> None:  # type: ignore[no-untyped-def]
    """Serve until SIGINT/SIGTERM, then drain in-flight calls for the grace period."""
    app = bootstrap(settings)
    server = create_server(app)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if on_ready is not None:
            on_ready(server)
        stop.wait()
        log.info("shutting down: draining in-flight calls for up to %.0fs", settings.shutdown_grace_seconds)
    finally:
        _shutdown(server, app)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _shutdown(server: PdvServer, app) -> None:  # type: ignore[no-untyped-def]
    server.stop()
    app.close()
