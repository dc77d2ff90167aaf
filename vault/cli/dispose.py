"""`pdv dispose [--dry-run]`: the records officer's retention disposal run. By default through
AdminService (the `dispose` grant; vault/cli/admin_api.py); with --local direct on the
database and Vault (the server's settings and service token), for a host with no server
running (the scheduled job is the usual way). Progress on stderr, the report as JSON on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from vault.bootstrap import bootstrap, disposal_service
from vault.cli import admin_api
from vault.cli.client_cmds import _connection_args
from vault.config import load_settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dispose", help="shred or de-identify every value past its retention (legal holds excepted)")
    _connection_args(p)
    admin_api.add_local_flag(p)
    p.add_argument("--config", type=Path, help="with --local: server config file (TOML); PDV_* variables override it")
    p.add_argument("--dry-run", action="store_true", help="report what would be disposed of; change nothing")
    p.add_argument("--now", type=_timestamp, default=None,
                   help="dispose as of this ISO-8601 UTC time instead of the clock (e.g. to preview a date)")
    p.set_defaults(run=run_dispose)


def _timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def run_dispose(args: argparse.Namespace) -> int:
    if args.now is not None and not args.dry_run and args.now > datetime.now(timezone.utc):
        print("pdv: --now in the future is only allowed with --dry-run", file=sys.stderr)
        return 2
    if not args.local:
        return admin_api.dispose(args)
    app = bootstrap(load_settings(args.config))
    try:
        with tqdm(total=0, unit="value", file=sys.stderr, desc="dispose", dynamic_ncols=True) as bar:
            def total(n: int) -> None:
                bar.total = n
                bar.refresh()

            report = disposal_service(app).dispose(args.now, args.dry_run, on_total=total, on_progress=bar.update)
    finally:
        app.close()
    print(json.dumps(report.to_json(), indent=2))
    return 0
