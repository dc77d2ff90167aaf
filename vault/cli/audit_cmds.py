"""`pdv audit verify | query | export`: admin tools for the access log.

`verify` asks the server (AdminService, the `audit` grant; vault/cli/admin_api.py) unless
--local is given. --local verifies from the database and Vault without trusting the server
process, and works while a server refuses to serve after a detected rollback: an auditor's
check should not depend on the thing it checks. query and export read the database. Locally they use the settings of `--config` / PDV_* (database, Vault address and service token,
audit_checkpoint_file or audit_external_record = false); verify needs Vault to unwrap the
chain key and check signatures.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from vault.bootstrap import audit_tools, verify_sink
from vault.cli import admin_api
from vault.cli.audit_output import print_verdict
from vault.cli.client_cmds import _connection_args
from vault.config import load_settings
from vault.errors import InvalidInput
from vault.services.audit_verify import MAX_PROBLEMS, export_lines, verify_log
from vault.storage.audit_log import EntryFilter


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="verify, query or export the tamper-evident access log")
    audit = p.add_subparsers(dest="audit_command", required=True)

    v = audit.add_parser("verify", help="recompute every chain and check the signed checkpoints (exit 1 if tampered)")
    _connection_args(v)
    admin_api.add_local_flag(v, "verify from the database and Vault directly (--config / PDV_*), not trusting the server")
    _config(v)
    v.set_defaults(run=lambda args: run_verify(args) if args.local else admin_api.audit_verify(args))

    for name, help_text in (("query", "entries matching the filters, as JSON lines"),
                            ("export", "every entry (or those matching the filters) as JSON lines, for a SIEM")):
        q = audit.add_parser(name, help=help_text)
        _config(q)
        q.add_argument("--subject")
        q.add_argument("--principal")
        q.add_argument("--purpose")
        q.add_argument("--action")
        q.add_argument("--since", type=_instant, help="ISO 8601 time (UTC if no offset), inclusive")
        q.add_argument("--until", type=_instant, help="ISO 8601 time (UTC if no offset), exclusive")
        q.set_defaults(run=run_export)


def _config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="server config file (TOML); PDV_* variables override it")


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an ISO 8601 time, e.g. 2026-01-31T12:00:00Z") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def run_verify(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    sink = verify_sink(settings)  # before anything is read: the config must say where the external record is
    with audit_tools(settings) as (repo, key, signer, _sink):
        if key is None:
            print("audit log: empty (no index root yet)")
            return 0
        report = verify_log(repo, key, signer, sink)
    return print_verdict(report.ok, problem_count=report.problem_count, entries=report.entries, items=report.items,
                         chains=report.chains, checkpoints=report.checkpoints, problems=report.problems,
                         unlisted=report.unlisted, listed_at_most=MAX_PROBLEMS, notes=report.notes)


def run_export(args: argparse.Namespace) -> int:
    where = EntryFilter(args.subject, args.principal, args.purpose, args.action, args.since, args.until)
    if args.since and args.until and args.since >= args.until:
        raise InvalidInput("--since must be before --until")
    with audit_tools(load_settings(args.config)) as (repo, _key, _signer, _sink):
        out = sys.stdout
        for line in export_lines(repo, where):
            out.write(line + "\n")
    return 0
