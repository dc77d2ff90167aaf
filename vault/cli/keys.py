"""`pdv keys rotate | rewrap | status | trim`: the admin's KEK rotation, with an admin Vault token;
`pdv keys rotate-dek --subject ID`: one subject's DEK, with the service token.

The token comes from vault_admin_token / vault_admin_token_file / PDV_VAULT_ADMIN_TOKEN and is
never printed. Progress goes to stderr, results to stdout.
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
from vault.config import load_settings
from vault.services.common import Caller


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="KEK rotation (admin token): rotate, rewrap, status, trim")
    keys = p.add_subparsers(dest="keys_command", required=True)

    def command(name: str, help: str, run) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        c = keys.add_parser(name, help=help)
        c.add_argument("--config", type=Path, help="server config file (TOML); PDV_* variables override it")
        c.set_defaults(run=run)
        return c

    command("rotate", "add a new KEK version in Vault; new DEKs are wrapped with it", run_rotate)
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
