"""`pdv dev`: a persistent local stack — OpenBao, SQLite, the server — in one command.

DEV ONLY: the OpenBao unseal key and root token sit in a 0600 file under the data
directory. Never use this for real personal data.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from vault.cli.serve import serve_until_signalled
from vault.config import ApiKey, hash_api_key, load_settings
from vault.keys.openbao import OpenBaoServer, create_service_token, provision_transit
from vault.storage import migrate
from vault.storage.engine import create_store_engine

DEV_PRINCIPAL = "dev"
WARNING = """\
!!! DEVELOPMENT MODE !!!
!!! OpenBao's unseal key and root token are stored in {creds} (mode 0600).
!!! Anyone who can read that file can read every value. Never put real personal data here.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dev", help="start a local OpenBao + SQLite + PDV stack (data kept in --data-dir)")
    p.add_argument("--data-dir", type=Path, default=Path(".pdv"))
    p.add_argument("--listen", default="127.0.0.1:50051")
    p.add_argument("--vault-port", type=int, default=8200)
    p.set_defaults(run=run_dev)


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def dev_api_key(data_dir: Path) -> str:
    """The dev principal's API key, made once and kept in data_dir/dev-api-key (0600)."""
    path = data_dir / "dev-api-key"
    if not path.exists():
        write_private(path, "pdvk_" + secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def run_dev(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    bao = OpenBaoServer(data_dir / "openbao", port=args.vault_port)
    bao.start()
    try:
        print(WARNING.format(creds=bao.credentials_path), file=sys.stderr)
        admin = bao.client()
        provision_transit(admin)
        token_file = data_dir / "service-token"
        write_private(token_file, create_service_token(admin, "transit", "pdv-kek") + "\n")
        api_key = dev_api_key(data_dir)
        settings = load_settings(
            listen=args.listen,
            database_url=f"sqlite:///{data_dir / 'pdv.db'}",
            vault_addr=bao.addr,
            vault_token_file=token_file,
            api_keys=[ApiKey(principal=DEV_PRINCIPAL, sha256=hash_api_key(api_key))],
        )
        engine = create_store_engine(settings.database_url)
        migrate.upgrade(engine)
        engine.dispose()
        serve_until_signalled(settings, on_ready=lambda server: _print_howto(args.listen, data_dir))
    finally:
        bao.stop()
    return 0


def _print_howto(listen: str, data_dir: Path) -> None:
    key_file = data_dir / "dev-api-key"
    print(
        f"""
PDV dev server on {listen} (OpenBao and SQLite under {data_dir}; Ctrl-C stops both; data is kept).
The dev API key is in {key_file}. From another shell in this directory:

  export PDV_API_KEY=$(cat {key_file})
  .venv/bin/pdv tokenize --purpose service_delivery --source 311 full_name='Ada Lovelace' email=ada@example.org
  .venv/bin/pdv detokenize --purpose service_delivery <token>
  .venv/bin/pdv lookup --purpose service_delivery email ada@example.org
""",
        file=sys.stderr,
        flush=True,
    )
