"""What `pdv keys` prints, the same whether it ran over the API or with --local."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from datetime import datetime, timedelta

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


def show_schedule(auto_rotate_period: timedelta | None, next_rotation: datetime | None) -> str:
    shown = show_period(auto_rotate_period) if auto_rotate_period else "off"
    return f"{shown} (next rotation about {next_rotation:%Y-%m-%d %H:%M} UTC)" if next_rotation else shown


def print_status(
    latest: int, metadata: bool, min_decryption: int, min_encryption: int, min_available: int,
    auto_rotate_period: timedelta | None, created: Mapping[int, datetime], data_keys: Mapping[int, int],
    secrets: Mapping[int, int],
) -> None:
    print(f"KEK latest version        v{latest}")
    if metadata:
        print(f"min_decryption_version    v{min_decryption}")
        print(f"min_encryption_version    {f'v{min_encryption}' if min_encryption else '0 (latest)'}")
        trimmed = f"v{min_available} (versions below it are trimmed)" if min_available else "0 (nothing trimmed)"
        print(f"min_available_version     {trimmed}")
        made = created.get(latest)
        upcoming = made + auto_rotate_period if made and auto_rotate_period else None
        print(f"auto_rotate_period        {show_schedule(auto_rotate_period, upcoming)}")
        for version, at in sorted(created.items()):
            print(f"  v{version} created {at:%Y-%m-%d %H:%M:%S} UTC")
    else:
        print("(Vault's version metadata is not shown: the server holds no admin token; "
              "see kek_admin_over_api, or run `pdv keys status --local`)")
    for table, counts in (("data_keys", data_keys), ("wrapped_secrets", secrets)):
        shown = ", ".join(f"v{v}: {n}" for v, n in sorted(counts.items())) or "no rows"
        print(f"{table:<26}{shown}")
    behind = sum(n for counts in (data_keys, secrets) for v, n in counts.items() if v < latest)
    if behind:
        print(f"{behind} row(s) below v{latest}: run `pdv keys rewrap`")
