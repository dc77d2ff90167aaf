"""`pdv keys`, `pdv dispose`, `pdv audit verify` and `pdv hold list` through AdminService.

The default for those commands: they need the server's address and an admin credential (an
API key or a client certificate with the grant the call needs), the same connection options
as every client command, and no database URL or Vault token. `--local` runs them on the
database and Vault directly instead (vault/cli/keys.py, dispose.py, audit_cmds.py). Streamed
progress is drawn with tqdm on stderr; results go to stdout as the local commands print them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from pdv_client import PdvClient
from pdv_client.errors import PdvError as ClientError
from tqdm import tqdm

from vault.cli.audit_output import print_verdict
from vault.cli.client_cmds import EXIT_CALL_FAILED, _client
from vault.cli.keys_output import print_status, show_period

LOCAL_HELP = "run on the database and Vault directly (the server's settings, --config / PDV_*) instead of the API"


def add_local_flag(p: argparse.ArgumentParser, help_text: str = LOCAL_HELP) -> None:
    p.add_argument("--local", action="store_true", help=help_text)


def over_api(args: argparse.Namespace, go: Callable[[PdvClient], int]) -> int:
    """Run `go(client)`; a failed call prints its status and message on stderr and exits 1."""
    try:
        with _client(args) as client:
            return go(client)
    except ClientError as exc:
        print(f"pdv: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CALL_FAILED


class _Bar:
    """A tqdm bar fed (total, done) pairs from a progress stream."""

    def __init__(self, desc: str, unit: str) -> None:
        self.bar = tqdm(total=0, unit=unit, file=sys.stderr, desc=desc, dynamic_ncols=True, smoothing=0.1)

    def __call__(self, total: int, done: int) -> None:
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def streamed(desc: str, unit: str, call: Callable[[Callable[[int, int], None]], Any]) -> Any:
    bar = _Bar(desc, unit)
    try:
        return call(bar)
    finally:
        bar.close()


# -- pdv keys ----------------------------------------------------------------------


def keys_status(args: argparse.Namespace) -> int:
    def go(client: PdvClient) -> int:
        s = client.admin.key_status()
        print_status(s.latest_version, s.vault_metadata, s.min_decryption_version, s.min_encryption_version,
                     s.min_available_version, s.auto_rotate_period, s.versions, s.data_keys, s.wrapped_secrets)
        return 0
    return over_api(args, go)


def keys_rotate(args: argparse.Namespace) -> int:
    def go(client: PdvClient) -> int:
        latest = client.admin.rotate_kek()
        print(f"KEK rotated: latest version is now v{latest}")
        print("next: `pdv keys rewrap` to rewrap stored DEKs to it")
        return 0
    return over_api(args, go)


def keys_schedule(args: argparse.Namespace) -> int:
    def go(client: PdvClient) -> int:
        schedule = client.admin.schedule_kek_rotation(None if args.off else args.every)
        if schedule.auto_rotate_period is None:
            print("KEK rotation schedule: off (rotate with `pdv keys rotate`)")
            return 0
        shown = show_period(schedule.auto_rotate_period)
        if schedule.next_rotation is not None:
            shown += f" (next rotation about {schedule.next_rotation:%Y-%m-%d %H:%M} UTC)"
        print(f"KEK rotation schedule: every {shown}")
        print("servers with rewrap_interval_seconds > 0 rewrap stored DEKs after each rotation by themselves")
        return 0
    return over_api(args, go)


def keys_rewrap(args: argparse.Namespace) -> int:
    if not 1 <= args.batch <= 1000:
        print("pdv: --batch must be between 1 and 1000", file=sys.stderr)
        return 2

    def go(client: PdvClient) -> int:
        report = streamed("rewrap", "DEK", lambda bar: client.admin.rewrap(batch_size=args.batch, on_progress=bar))
        rate = report.rewrapped / report.seconds if report.seconds > 0 else 0.0
        print(f"rewrapped {report.rewrapped} to KEK v{report.latest_version} in {report.seconds:.1f} s ({rate:,.0f}/s); "
              f"skipped {report.skipped} changed concurrently; failed {report.failed}; "
              f"{report.remaining} still below v{report.latest_version}")
        if report.remaining:
            print("some rows are still below the latest version: see the server log, then run `pdv keys rewrap` again",
                  file=sys.stderr)
            return 1
        return 0
    return over_api(args, go)


def keys_trim(args: argparse.Namespace) -> int:
    if args.backup_horizon_days is not None and args.backup_horizon_days < 0:
        print("pdv: --backup-horizon-days must not be negative", file=sys.stderr)
        return 2

    def go(client: PdvClient) -> int:
        report = client.admin.trim_kek(backup_horizon_days=args.backup_horizon_days)
        if report.trimmed:
            print(f"KEK versions below v{report.retired_below} trimmed: min_decryption_version is "
                  f"v{report.retired_below}; backups wrapped under older versions can no longer be decrypted")
        else:
            print(f"nothing to trim: no KEK version below v{report.retired_below} is left")
        return 0
    return over_api(args, go)


def keys_rotate_dek(args: argparse.Namespace) -> int:
    def go(client: PdvClient) -> int:
        for subject_id in tqdm(args.subject, unit="subject", file=sys.stderr, desc="rotate-dek",
                               disable=len(args.subject) < 2):
            done = client.admin.rotate_dek(subject_id)
            old = ", ".join(f"v{v}" for v in done.old_versions)
            print(f"{done.subject_id}: {done.values} value(s) re-encrypted under DEK v{done.new_version}; deleted {old}")
        return 0
    return over_api(args, go)


# -- pdv dispose, pdv audit verify, pdv hold list ---------------------------------------


def dispose(args: argparse.Namespace) -> int:
    def go(client: PdvClient) -> int:
        report = streamed("dispose", "value",
                          lambda bar: client.admin.dispose(dry_run=args.dry_run, now=args.now, on_progress=bar))
        print(json.dumps(report.to_json(), indent=2))
        return 0
    return over_api(args, go)


def audit_verify(args: argparse.Namespace) -> int:
    def go(client: PdvClient) -> int:
        report = client.admin.verify_audit_log()
        if report.empty:
            print("audit log: empty (no index root yet)")
            return 0
        return print_verdict(report.intact, problem_count=report.problem_count, entries=report.entries, items=None,
                             chains=report.chains, checkpoints=report.checkpoints, problems=report.problems,
                             unlisted=report.unlisted, listed_at_most=len(report.problems), notes=report.notes)
    return over_api(args, go)


def hold_list(args: argparse.Namespace) -> int:
    def go(client: PdvClient) -> int:
        for h in client.admin.list_holds(args.subject):
            print(json.dumps({"subject_id": h.subject_id, "case_id": h.case_id, "reason": h.reason,
                              "placed_by": h.placed_by,
                              "placed_at": h.placed_at.isoformat() if h.placed_at else None}))
        return 0
    return over_api(args, go)


def policy_reload(args: argparse.Namespace) -> int:
    def go(client: PdvClient) -> int:
        info = client.admin.reload_policy()
        for warning in info.warnings:
            print(f"warning: {warning}")
        print(f"policy reloaded from {info.source} ({info.principals} principals, {info.grants} grants)")
        return 0
    return over_api(args, go)


def policy_check_remote(args: argparse.Namespace, text: str) -> int:
    def go(client: PdvClient) -> int:
        check = client.admin.check_policy(text)
        if not check.valid:
            print(f"pdv: {check.error}", file=sys.stderr)
            return 2
        for warning in check.warnings:
            print(f"warning: {warning}")
        print(f"{args.file}: ok against the server's catalog ({check.principals} principals, {check.grants} grants)")
        return 0
    return over_api(args, go)
