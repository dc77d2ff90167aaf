"""`pdv restore status | reconcile`: the operator's side of a database restore (README
"Backup and restore"). Direct on the database and Vault, with the server's settings and
service token."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from vault.bootstrap import App, bootstrap, reconcile_restore, restore_status
from vault.config import load_settings
from vault.services.lifecycle.restore import blocked_message


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("restore", help="check or reconcile a database restored from a backup")
    restore = p.add_subparsers(dest="restore_command", required=True)
    s = restore.add_parser("status", help="is the database behind the audit checkpoint file? (exit 1 if so)")
    s.add_argument("--config", type=Path, help="server config file (TOML); PDV_* variables override it")
    s.set_defaults(run=run_status)
    r = restore.add_parser("reconcile", help="after a restore: re-apply every shred the ledger knows of, record "
                                             "the restore (signed) and let the servers serve again")
    r.add_argument("--config", type=Path, help="server config file (TOML); PDV_* variables override it")
    r.add_argument("--reason", required=True, help="why the database was restored (kept in the signed record)")
    r.set_defaults(run=run_reconcile)


def _app(args: argparse.Namespace) -> App:
    return bootstrap(load_settings(args.config))


def run_status(args: argparse.Namespace) -> int:
    found = restore_status(load_settings(args.config))
    if found is None:
        print("no audit_checkpoint_file configured: a rolled-back database cannot be detected", file=sys.stderr)
        return 0
    if found:
        print(f"database BEHIND the checkpoint file: {blocked_message(found)}", file=sys.stderr)
        return 1
    print("database not behind the checkpoint file: nothing to reconcile")
    return 0


def run_reconcile(args: argparse.Namespace) -> int:
    app = _app(args)
    try:
        report = reconcile_restore(app, f"operator:{getpass.getuser()}", args.reason)
    finally:
        app.close()
    print(json.dumps(report.to_json(), indent=2))
    if report.restore_at is None:
        print("the database was not behind the checkpoint file: shreds re-applied, no restore recorded", file=sys.stderr)
    else:
        print(f"restore recorded at {report.restore_at}; running servers serve again within restore_check_seconds",
              file=sys.stderr)
    return 0
