"""`pdv policy check|reload` and `pdv consent opt-out|opt-in|show`."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from vault.catalog import load_catalog
from vault.cli import admin_api
from vault.cli.client_cmds import _call, _connection_args
from vault.errors import ConfigError
from vault.policy import load_policy


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policy", help="check an access-policy file, or make a server reload its own")
    cmds = p.add_subparsers(dest="policy_command", required=True)
    check = cmds.add_parser("check", help="validate FILE against the catalog (errors name the line)")
    check.add_argument("file", type=Path)
    check.add_argument("--catalog", type=Path, help="catalog file (default: the shipped catalog)")
    check.add_argument("--server", action="store_true",
                       help="check against the running server's catalog (AdminService, the `policy` grant)")
    _connection_args(check)
    check.set_defaults(run=run_check)
    reload = cmds.add_parser("reload", help="make a running server re-read policy_path and tls_crl_file: over the API "
                                            "(the `policy` grant), or with --pid by SIGHUP")
    reload.add_argument("--pid", type=int, help="send SIGHUP to this `pdv serve` process instead (every worker of it)")
    _connection_args(reload)
    reload.set_defaults(run=run_reload)

    p = sub.add_parser("consent", help="a resident's opt-outs by purpose (enforced on detokenize and lookup)")
    _connection_args(p)
    p.add_argument("consent_action", choices=("opt-out", "opt-in", "show"))
    p.add_argument("--subject", required=True)
    p.add_argument("--purpose", help="the purpose (opt-out and opt-in)")
    p.add_argument("--case", help="the privacy request (case id) this change answers: linked to it")
    p.set_defaults(run=run_consent)


def run_check(args: argparse.Namespace) -> int:
    """Strict: an expired partner agreement is an error here (a served policy only warns)."""
    if args.server:
        try:
            text = args.file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{args.file}: cannot read policy: {exc.__class__.__name__}") from None
        return admin_api.policy_check_remote(args, text)
    policy = load_policy(args.file, load_catalog(args.catalog), strict=True)
    principals = sorted(policy.grants)
    for warning in policy.warnings:
        print(f"warning: {warning}")
    print(f"{args.file}: ok ({len(principals)} principals, {sum(len(g) for g in policy.grants.values())} grants)")
    return 0


def run_reload(args: argparse.Namespace) -> int:
    if args.pid is None:
        return admin_api.policy_reload(args)
    os.kill(args.pid, signal.SIGHUP)
    print(f"sent SIGHUP to {args.pid}; the server log says whether the new policy was taken")
    return 0


def run_consent(args: argparse.Namespace) -> int:
    if args.consent_action == "show":
        return _call(args, lambda c: {"subject_id": args.subject, "opted_out": c.get_consent(args.subject)})
    if not args.purpose:
        print("pdv: --purpose is required to opt out or in")
        return 2
    opted_out = args.consent_action == "opt-out"
    return _call(args, lambda c: {"changed": c.set_consent(args.subject, args.purpose, opted_out=opted_out,
                                                           case_id=args.case)})
