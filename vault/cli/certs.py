"""`pdv certs dev`: a development CA, server certificate and client certificates for mTLS.

Prints paths and settings only — never key material.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vault.certs import DEFAULT_HOSTS, DevPkiPaths, write_dev_pki
from vault.errors import InvalidInput


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("certs", help="certificates for mTLS")
    certs = p.add_subparsers(dest="certs_command", required=True)
    dev = certs.add_parser(
        "dev", help="make a dev CA (kept if DIR has one), a server certificate and client certificates (DEV ONLY)"
    )
    dev.add_argument("--out", type=Path, default=Path(".pdv/certs"), help="directory (default .pdv/certs, mode 0700)")
    dev.add_argument("--principal", action="append", default=[], metavar="NAME",
                     help="make a client certificate for this principal (repeatable; default: dev)")
    dev.add_argument("--hosts", default=",".join(DEFAULT_HOSTS),
                     help="comma-separated DNS names / IPs for the server certificate (default %(default)s)")
    dev.set_defaults(run=run_certs_dev)


def run_certs_dev(args: argparse.Namespace) -> int:
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    principals = args.principal or ["dev"]
    if not hosts:
        raise InvalidInput("--hosts needs at least one host")
    try:
        paths = write_dev_pki(args.out.resolve(), principals, hosts)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    print(describe(paths, principals, hosts))
    return 0


def describe(paths: DevPkiPaths, principals: list[str], hosts: list[str]) -> str:
    """What was written and how to use it: server settings, then a client call per principal."""
    clients = "\n".join(
        f"  {name}: {paths.client_cert(name)} (key {paths.client_key(name)})" for name in principals
    )
    first = principals[0]
    host = f"[{hosts[0]}]" if ":" in hosts[0] else hosts[0]
    return f"""DEV ONLY: the CA key is in {paths.ca_key} (mode 0600); anyone holding it can mint principals.

CA:      {paths.ca}
Server:  {paths.server_cert} (key {paths.server_key}) for {", ".join(hosts)}
Clients (principal from SAN URI urn:pdv:principal:<name>):
{clients}

Server settings (pdv.toml):
  tls_cert_file = "{paths.server_cert}"
  tls_key_file = "{paths.server_key}"
  tls_client_ca_file = "{paths.ca}"
  tls_principals = [{", ".join(f'"{p}"' for p in principals)}]

or environment:
  export PDV_TLS_CERT_FILE={paths.server_cert} PDV_TLS_KEY_FILE={paths.server_key} PDV_TLS_CLIENT_CA_FILE={paths.ca}

Client (as {first}):
  export PDV_TLS_CA={paths.ca} PDV_TLS_CERT={paths.client_cert(first)} PDV_TLS_KEY={paths.client_key(first)}
  pdv lookup --target {host}:50051 --purpose service_delivery email ada@example.org"""
