"""`pdv`: one entry point, a subcommand per task. Each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from vault.cli.dev_config import apply_default_config
from vault.errors import PdvError


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="server config file (TOML); PDV_* variables override it")


def build_parser() -> argparse.ArgumentParser:
    from vault.cli import audit_cmds
    from vault.cli import keys as key_cmds
    from vault.cli import dispose as dispose_cmds
    from vault.cli import (
        bench, certs, client_cmds, dev, disclose_cmds, event_cmds, policy_cmds, request_cmds, restore_cmds, serve,
        subject_cmds,
    )

    parser = argparse.ArgumentParser(prog="pdv", description="PDV, the city's personal-data vault")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gRPC server")
    _config_arg(p)
    serve.add_log_format_arg(p)
    p.set_defaults(run=serve.run_serve)

    p = sub.add_parser("db", help="database schema")
    db = p.add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", help="migrate the database to the newest schema")
    _config_arg(up)
    up.set_defaults(run=serve.run_db_upgrade)

    dev.add_parser(sub)
    certs.add_parser(sub)
    dispose_cmds.add_parser(sub)
    client_cmds.add_parsers(sub)
    disclose_cmds.add_parsers(sub)
    event_cmds.add_parsers(sub)
    subject_cmds.add_parsers(sub)
    request_cmds.add_parsers(sub)
    policy_cmds.add_parsers(sub)
    bench.add_parser(sub)
    key_cmds.add_parsers(sub)
    audit_cmds.add_parsers(sub)
    restore_cmds.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_default_config(args)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    try:
        return int(args.run(args) or 0)
    except PdvError as exc:
        # Domain messages are value-free by construction.
        print(f"pdv: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
