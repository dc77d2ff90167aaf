"""`pdv keys rotate | schedule | rewrap | status | trim`: the admin's KEK rotation, with an admin Vault token;
`pdv keys rotate-dek --subject ID`: one subject's DEK, with the service token.

The token comes from vault_admin_token / vault_admin_token_file / PDV_VAULT_ADMIN_TOKEN and is
never printed. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import gc
import getpass
import re
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from tqdm import tqdm

from vault.bootstrap import bootstrap, dek_rotation_service, rotation_service
from vault.config import load_settings
from vault.keys.admin import KekVersions
from vault.services.common import Caller


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="KEK rotation (admin token): rotate, schedule, rewrap, status, trim")
    keys = p.add_subparsers(dest="keys_command", required=True)

    def command(name: str, help: str, run) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        c = keys.add_parser(name, help=help)
        c.add_argument("--config", type=Path, help="server config file (TOML); PDV_* variables override it")
        c.set_defaults(run=run)
        return c

    command("rotate", "add a new KEK version in Vault; new DEKs are wrapped with it", run_rotate)
    c = command("schedule", "have Vault rotate the KEK by itself at a fixed period (auto_rotate_period)", run_schedule)
    when = c.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", type=period, metavar="PERIOD",
                      help="rotation period: a number and a unit, s m h d or w (90d, 12w); at least 1h")
    when.add_argument("--off", action="store_true", help="stop rotating on a schedule")
    c = command("rewrap", "rewrap every stored DEK to the latest KEK version (online, resumable)", run_rewrap)
    c.add_argument("--batch", type=int, default=1000, help="DEKs per Vault call and per transaction (at most 1000)")
    command("status", "KEK versions in Vault and stored rows per version", run_status)
    c = command("trim", "retire KEK versions below the latest once unused and past the backup horizon", run_trim)
    c.add_argument("--backup-horizon-days", type=float, default=None,
                   help="override the backup_horizon_days setting (days backups are kept)")
    c = command("rotate-dek", "re-encrypt a subject's values under a fresh DEK (service token); tokens stay",
                run_rotate_dek)
    c.add_argument("--subject", required=True, action="append", help="subject id (repeatable)")


def run_rotate(args: argparse.Namespace) -> int:
    with rotation_service(load_settings(args.config)) as service:
        latest = service.rotate()
    print(f"KEK rotated: latest version is now v{latest}")
    print("next: `pdv keys rewrap` to rewrap stored DEKs to it")
    return 0


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def period(text: str) -> timedelta:
    """`90d` → 90 days (argparse type: a bad value is a usage error naming the option)."""
    match = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a period like 90d, 12h or 4w")
    span = timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    if span < timedelta(hours=1):
        raise argparse.ArgumentTypeError("Vault rotates at most hourly: give a period of at least 1h")
    return span


def show_period(span: timedelta) -> str:
    """The largest unit that divides the period: 7776000 s → `90d`."""
    seconds = int(span.total_seconds())
    for unit in "wdhms":
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def show_schedule(kek: KekVersions) -> str:
    shown = show_period(kek.auto_rotate_period) if kek.auto_rotate_period else "off"
    return f"{shown} (next rotation about {kek.next_rotation:%Y-%m-%d %H:%M} UTC)" if kek.next_rotation else shown


def run_schedule(args: argparse.Namespace) -> int:
    with rotation_service(load_settings(args.config)) as service:
        kek = service.schedule(None if args.off else args.every)
    if kek.auto_rotate_period is None:
        print("KEK rotation schedule: off (rotate with `pdv keys rotate`)")
        return 0
    print(f"KEK rotation schedule: every {show_schedule(kek)}")
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
    print(f"KEK latest version        v{kek.latest}")
    print(f"min_decryption_version    v{kek.min_decryption}")
    print(f"min_encryption_version    {f'v{kek.min_encryption}' if kek.min_encryption else '0 (latest)'}")
    trimmed = f"v{kek.min_available} (versions below it are trimmed)" if kek.min_available else "0 (nothing trimmed)"
    print(f"min_available_version     {trimmed}")
    if kek.auto_rotate_period is None:
        print("auto_rotate_period        off")
    else:
        print(f"auto_rotate_period        {show_schedule(kek)}")
    for version, created in sorted(kek.created.items()):
        print(f"  v{version} created {created:%Y-%m-%d %H:%M:%S} UTC")
    for table, counts in (("data_keys", status.data_keys), ("wrapped_secrets", status.secrets)):
        shown = ", ".join(f"v{v}: {n}" for v, n in sorted(counts.items())) or "no rows"
        print(f"{table:<26}{shown}")
    behind = sum(n for counts in (status.data_keys, status.secrets) for v, n in counts.items() if v < kek.latest)
    if behind:
        print(f"{behind} row(s) below v{kek.latest}: run `pdv keys rewrap`")
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
