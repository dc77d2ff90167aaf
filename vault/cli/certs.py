"""`pdv certs dev`: a development CA, server certificate and client certificates for mTLS;
`pdv certs revoke`: add a client certificate to that CA's CRL.

Prints paths and settings only — never key material.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cryptography import x509

from vault.certs import DEFAULT_HOSTS, DevPkiPaths, revoke_in_dev_crl, write_dev_pki
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
    revoke = certs.add_parser(
        "revoke", help="add a client certificate to the dev CA's CRL (DIR/crl.pem); servers take it on reload"
    )
    revoke.add_argument("--out", type=Path, default=Path(".pdv/certs"), help="the dev CA's directory (default .pdv/certs)")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--principal", metavar="NAME", help="the client certificate `pdv certs dev` made for NAME")
    which.add_argument("--cert", type=Path, metavar="FILE", help="a PEM client certificate issued by the dev CA")
    revoke.set_defaults(run=run_certs_revoke)


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


def run_certs_revoke(args: argparse.Namespace) -> int:
    paths = DevPkiPaths(args.out.resolve())
    cert_path = paths.client_cert(args.principal) if args.principal else args.cert
    if not paths.ca.exists() or not paths.ca_key.exists():
        raise InvalidInput(f"no dev CA in {paths.out}; make one with `pdv certs dev --out {args.out}`")
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except OSError as exc:
        raise InvalidInput(f"{cert_path}: {exc.strerror}") from None
    except ValueError:
        raise InvalidInput(f"{cert_path}: not a PEM certificate") from None
    try:
        added = revoke_in_dev_crl(paths, cert)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    state = "revoked" if added else "already revoked"
    print(f"{state}: serial {cert.serial_number:x} ({cert_path.name}) in {paths.crl}\n"
          f"servers with tls_crl_file = \"{paths.crl}\" take it on reload: pdv policy reload --pid PID")
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
  tls_crl_file = "{paths.crl}"    # revoke with: pdv certs revoke --out {paths.out} --principal NAME

or environment:
  export PDV_TLS_CERT_FILE={paths.server_cert} PDV_TLS_KEY_FILE={paths.server_key} PDV_TLS_CLIENT_CA_FILE={paths.ca}
  export PDV_TLS_CRL_FILE={paths.crl}

Client (as {first}):
  export PDV_TLS_CA={paths.ca} PDV_TLS_CERT={paths.client_cert(first)} PDV_TLS_KEY={paths.client_key(first)}
  pdv lookup --target {host}:50051 --purpose service_delivery email ada@example.org"""
