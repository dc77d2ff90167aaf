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

from vault.certs import DEFAULT_HOSTS, DevPkiPaths, dev_pki_is_current, write_dev_pki
from vault.cli.dev_config import write_dev_config, write_secret
from vault.cli.serve import add_log_format_arg, serve_until_signalled
from vault.observability import logs
from vault.config import hash_api_key, load_settings
from vault.keys.openbao import OpenBaoServer, create_admin_token, create_service_token, provision_transit
from vault.storage import migrate
from vault.storage.engine import create_store_engine

DEV_PRINCIPAL = "dev"
DEV_ADMIN_TOKEN_TTL = "768h"  # remade at every start; a dev stack may run for weeks
WARNING = """\
!!! DEVELOPMENT MODE !!!
!!! OpenBao's unseal key and root token are stored in {creds} (mode 0600),
!!! and a KEK admin token in {admin} (mode 0600) for `pdv keys`.
!!! Anyone who can read those files can read every value. Never put real personal data here.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dev", help="start a local OpenBao + SQLite + PDV stack (data kept in --data-dir)")
    p.add_argument("--data-dir", type=Path, default=Path(".pdv"))
    p.add_argument("--listen", default="127.0.0.1:50051")
    p.add_argument("--vault-port", type=int, default=8200)
    p.add_argument("--metrics-listen", default="127.0.0.1:9464",
                   help="host:port of the Prometheus metrics and /ready HTTP server")
    add_log_format_arg(p)
    p.add_argument("--tls", action="store_true",
                   help="serve with mTLS, using dev certificates made under DATA_DIR/certs (as `pdv certs dev`)")
    p.set_defaults(run=run_dev)


def dev_api_key(data_dir: Path) -> str:
    """The dev principal's API key, made once and kept in data_dir/dev-api-key (0600, no newline)."""
    path = data_dir / "dev-api-key"
    if not path.exists():
        write_secret(path, "pdvk_" + secrets.token_urlsafe(32))
    text = path.read_text()
    if text != text.strip():
        write_secret(path, text)  # written with a newline by an older `pdv dev`
    return text.strip()


def run_dev(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    bao = OpenBaoServer(data_dir / "openbao", port=args.vault_port)
    bao.start()
    try:
        print(WARNING.format(creds=bao.credentials_path, admin=data_dir / "admin-token"), file=sys.stderr)
        admin = bao.client()
        provision_transit(admin)
        token_file, admin_token_file = data_dir / "service-token", data_dir / "admin-token"
        write_secret(token_file, create_service_token(admin, "transit", "pdv-kek"))
        # `pdv keys` needs an admin token; a pdv-admin one, not the root token, as in production.
        write_secret(admin_token_file, create_admin_token(admin, "transit", "pdv-kek", ttl=DEV_ADMIN_TOKEN_TTL))
        api_key = dev_api_key(data_dir)
        pki = dev_pki(data_dir / "certs", args.listen) if args.tls else None
        config = data_dir / "pdv.toml"
        write_dev_config(config, {
            "listen": args.listen,
            "database_url": f"sqlite:///{data_dir / 'pdv.db'}",
            "vault_addr": bao.addr,
            "vault_token_file": token_file,
            "vault_admin_token_file": admin_token_file,
            "kek_admin_over_api": True,  # so `pdv keys rotate | schedule | trim` work over the API here too
            "api_keys": [{"principal": DEV_PRINCIPAL, "sha256": hash_api_key(api_key)}],
            "admin_principals": [DEV_PRINCIPAL],  # so a newcomer can try pdv shred / pdv hold
            "tombstone_ledger": data_dir / "tombstones.jsonl",
            "audit_checkpoint_file": data_dir / "audit-checkpoints.jsonl",
            "dev_policy": True,  # everything for everyone: a local sandbox, never production
            "metrics_address": args.metrics_listen,
            "log_format": args.log_format or "text",
            **(_tls_settings(pki) if pki else {}),
        })
        settings = load_settings(config)  # what the admin commands will read, exactly
        logs.configure(settings.log_format)
        engine = create_store_engine(settings.database_url)
        migrate.upgrade(engine)
        engine.dispose()
        serve_until_signalled(settings, on_ready=lambda server: _print_howto(args.listen, data_dir, pki, server))
    finally:
        bao.stop()
    return 0


def dev_pki(out: Path, listen: str) -> DevPkiPaths:
    """Dev certificates under `out`: made once, remade when the server certificate is
    missing, expires within a week, or does not cover the listen host."""
    paths = DevPkiPaths(out)
    host = listen.rpartition(":")[0].strip("[]")
    hosts = list(dict.fromkeys([*DEFAULT_HOSTS, host]))
    if not dev_pki_is_current(paths, DEV_PRINCIPAL, host):
        write_dev_pki(out, [DEV_PRINCIPAL], hosts)
    return paths


def _tls_settings(pki: DevPkiPaths) -> dict[str, object]:
    return {
        "tls_cert_file": pki.server_cert, "tls_key_file": pki.server_key, "tls_client_ca_file": pki.ca,
        "tls_principals": [DEV_PRINCIPAL],
        # `pdv certs revoke` writes it; `pdv policy reload` makes the server take it.
        "tls_crl_file": pki.crl if pki.crl.exists() else None,
    }


def _print_howto(listen: str, data_dir: Path, pki: DevPkiPaths | None = None, server=None) -> None:  # type: ignore[no-untyped-def]
    if server is not None and server.metrics_port is not None:
        host = server.metrics.address_host
        print(f"\nMetrics: http://{host}:{server.metrics_port}/metrics   Readiness: http://{host}:{server.metrics_port}/ready",
              file=sys.stderr, flush=True)
    if pki is not None:
        _print_tls_howto(listen, pki)
        return
    key_file = data_dir / "dev-api-key"
    print(
        f"""
PDV dev server on {listen} (OpenBao and SQLite under {data_dir}; Ctrl-C stops both; data is kept).
The dev API key is in {key_file}. From another shell in this directory:

  export PDV_API_KEY=$(cat {key_file})
  .venv/bin/pdv tokenize --purpose service_delivery --source 311 full_name='Ada Lovelace' email=ada@example.org
  .venv/bin/pdv detokenize --purpose service_delivery <token>
  .venv/bin/pdv lookup --purpose service_delivery email ada@example.org

Admin commands read {data_dir / 'pdv.toml'} when run from this directory:

  .venv/bin/pdv audit verify
  .venv/bin/pdv keys status
  .venv/bin/pdv dispose --dry-run
""",
        file=sys.stderr,
        flush=True,
    )


def _print_tls_howto(listen: str, pki: DevPkiPaths) -> None:
    print(
        f"""
PDV dev server with mTLS on {listen} (certificates under {pki.out}; Ctrl-C stops it; data is kept).
A call needs a client certificate signed by {pki.ca}; the dev one names principal {DEV_PRINCIPAL!r}.
Calls without a valid certificate fail the TLS handshake (the client sees UNAVAILABLE).
From another shell in this directory:

  export PDV_TARGET={listen} PDV_TLS_CA={pki.ca}
  export PDV_TLS_CERT={pki.client_cert(DEV_PRINCIPAL)} PDV_TLS_KEY={pki.client_key(DEV_PRINCIPAL)}
  .venv/bin/pdv tokenize --purpose service_delivery --source 311 full_name='Ada Lovelace' email=ada@example.org
  .venv/bin/pdv detokenize --purpose service_delivery <token>

More client certificates: pdv certs dev --out {pki.out} --principal NAME (keeps the CA; add NAME to tls_principals).
""",
        file=sys.stderr,
        flush=True,
    )
