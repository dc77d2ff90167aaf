"""`pdv keys rotate | schedule | rewrap | status | trim | rotate-dek`: key management.

By default each calls AdminService on a running server (vault/cli/admin_api.py) with an admin
credential that holds the `keys` grant. With --local it runs here instead: the KEK commands
with an admin Vault token (vault_admin_token / vault_admin_token_file / PDV_VAULT_ADMIN_TOKEN,
never printed) and the database URL, rotate-dek with the service token. --local is for a
server that does not hold the admin token (kek_admin_over_api off: rotate, schedule, trim and
Vault's metadata in status), and for a trim with a shorter backup horizon than the server's.
Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import gc
import getpass
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from tqdm import tqdm

from vault.bootstrap import bootstrap, dek_rotation_service, rotation_service
from vault.cli import admin_api
from vault.cli.client_cmds import _connection_args
from vault.cli.keys_output import period, print_status, show_schedule
from vault.config import load_settings
from vault.services.common import Caller


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="key management over the API (or --local): rotate, schedule, rewrap, status, trim, "
                                    "rotate-dek")
    keys = p.add_subparsers(dest="keys_command", required=True)

    def command(name: str, help: str, local, remote) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        c = keys.add_parser(name, help=help)
        _connection_args(c)
        admin_api.add_local_flag(c)
        c.add_argument("--config", type=Path, help="with --local: server config file (TOML); PDV_* variables override it")
        c.set_defaults(run=lambda args: local(args) if args.local else remote(args))
        return c

    command("rotate", "add a new KEK version in Vault; new DEKs are wrapped with it", run_rotate, admin_api.keys_rotate)
    c = command("schedule", "have Vault rotate the KEK by itself at a fixed period (auto_rotate_period)", run_schedule,
                admin_api.keys_schedule)
    when = c.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", type=period, metavar="PERIOD",
                      help="rotation period: a number and a unit, s m h d or w (90d, 12w); at least 1h")
    when.add_argument("--off", action="store_true", help="stop rotating on a schedule")
    c = command("rewrap", "rewrap every stored DEK to the latest KEK version (online, resumable)", run_rewrap,
                admin_api.keys_rewrap)
    c.add_argument("--batch", type=int, default=1000, help="DEKs per Vault call and per transaction (at most 1000)")
    command("status", "KEK versions in Vault and stored rows per version", run_status, admin_api.keys_status)
    c = command("trim", "retire KEK versions below the latest once unused and past the backup horizon", run_trim,
                admin_api.keys_trim)
    c.add_argument("--backup-horizon-days", type=float, default=None,
                   help="days backups are kept: over the API only longer than the server's backup_horizon_days; "
                        "with --local it overrides the setting")
    c = command("rotate-dek", "re-encrypt a subject's values under a fresh DEK; tokens stay", run_rotate_dek,
                admin_api.keys_rotate_dek)
    c.add_argument("--subject", required=True, action="append", help="subject id (repeatable)")


def run_rotate(args: argparse.Namespace) -> int:
    with rotation_service(load_settings(args.config)) as service:
        latest = service.rotate()
    print(f"KEK rotated: latest version is now v{latest}")
    print("next: `pdv keys rewrap` to rewrap stored DEKs to it")
    return 0


def run_schedule(args: argparse.Namespace) -> int:
    with rotation_service(load_settings(args.config)) as service:
        kek = service.schedule(None if args.off else args.every)
    if kek.auto_rotate_period is None:
        print("KEK rotation schedule: off (rotate with `pdv keys rotate`)")
        return 0
    print(f"KEK rotation schedule: every {show_schedule(kek.auto_rotate_period, kek.next_rotation)}")
    print("servers with rewrap_interval_seconds > 0 rewrap stored DEKs after each rotation by themselves")
    return 0


def run_rewrap(args: argparse.Namespace) -> int:
    if not 1 <= args.batch <= 1000:
        print("pdv: --batch must be between 1 and 1000", file=sys.stderr)
        return 2
    # A rewrap allocates a few short-lived objects per key; without this, every full garbage
    # collection also walks the ~100k long-lived objects of the imported libraries, about a
    # fifth of the rewrap's Python time (measured). They live as long as the process anyway.
    gc.freeze()
    with rotation_service(load_settings(args.config)) as service, tqdm(
        total=0, unit="DEK", file=sys.stderr, desc="rewrap", dynamic_ncols=True, smoothing=0.1,
    ) as bar:
        def more(n: int) -> None:
            bar.total = (bar.total or 0) + n
            bar.refresh()

        report = service.rewrap(args.batch, on_total=more, on_progress=bar.update)
    rate = report.rewrapped / report.seconds if report.seconds > 0 else 0.0
    print(
        f"rewrapped {report.rewrapped} to KEK v{report.latest} in {report.seconds:.1f} s ({rate:,.0f}/s); "
        f"skipped {report.skipped} changed concurrently; failed {report.failed}; "
        f"{report.remaining} still below v{report.latest}"
    )
    if report.remaining:
        print("some rows are still below the latest version: see the log above, then run `pdv keys rewrap` again",
              file=sys.stderr)
        return 1
    return 0


def run_status(args: argparse.Namespace) -> int:
    with rotation_service(load_settings(args.config)) as service:
        status = service.status()
    kek = status.kek
    print_status(kek.latest, True, kek.min_decryption, kek.min_encryption, kek.min_available, kek.auto_rotate_period,
                 kek.created, status.data_keys, status.secrets)
    return 0


def run_trim(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    horizon = None if args.backup_horizon_days is None else timedelta(days=args.backup_horizon_days)
    if horizon is not None and horizon < timedelta(0):
        print("pdv: --backup-horizon-days must not be negative", file=sys.stderr)
        return 2
    with rotation_service(settings) as service:
        report = service.trim(horizon)  # RotationRefused → "pdv: refusing to trim: …", exit 2
    if report.trimmed:
        print(f"KEK versions below v{report.retired_below} trimmed: min_decryption_version is v{report.retired_below}; "
              "backups wrapped under older versions can no longer be decrypted")
    else:
        print(f"nothing to trim: no KEK version below v{report.retired_below} is left")
    return 0


def run_rotate_dek(args: argparse.Namespace) -> int:
    app = bootstrap(load_settings(args.config))
    try:
        service = dek_rotation_service(app)
        caller = Caller(getpass.getuser() or "pdv-admin", f"rotate-dek-{uuid.uuid4().hex}")
        for subject_id in tqdm(args.subject, unit="subject", file=sys.stderr, desc="rotate-dek",
                               disable=len(args.subject) < 2):
            done = service.rotate_subject(caller, subject_id)
            old = ", ".join(f"v{v}" for v in done.old_versions)
            print(f"{done.subject_id}: {done.values} value(s) re-encrypted under DEK v{done.new_version}; "
                  f"deleted {old}")
    finally:
        app.close()
    return 0
