"""`pdv tokenize | detokenize | lookup | translate`: call a running server through the Python client."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pdv_client import PdvClient
from pdv_client.errors import PdvError as ClientError
from pdv_client.models import Record
from pdv_client.tls import tls_credentials

from vault.errors import InvalidInput


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tokenize", help="tokenize one record: FIELD=VALUE ...")
    _connection_args(p)
    p.add_argument("--purpose", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--notice-id")
    p.add_argument("--notice-given", action=argparse.BooleanOptionalAction, default=None,
                   help="whether the person was told of the collection (default: exactly when --notice-id is given)")
    p.add_argument("--subject", help="add the fields to this existing subject")
    p.add_argument("--request-id")
    p.add_argument("fields", nargs="+", metavar="FIELD=VALUE")
    p.set_defaults(run=run_tokenize)

    p = sub.add_parser("detokenize", help="resolve tokens to values")
    _connection_args(p)
    p.add_argument("--purpose", required=True)
    p.add_argument("--field", help="the field (needed for format-preserving tokens)")
    p.add_argument("tokens", nargs="+")
    p.set_defaults(run=run_detokenize)

    p = sub.add_parser("lookup", help="find the tokens holding a value")
    _connection_args(p)
    p.add_argument("--purpose", required=True)
    p.add_argument("field")
    p.add_argument("value")
    p.set_defaults(run=run_lookup)

    p = sub.add_parser("translate", help="convert tokens of another token domain into tokens of your own")
    _connection_args(p)
    p.add_argument("--purpose", required=True)
    p.add_argument("--from-domain", required=True, help="the domain the tokens were issued in, e.g. partner:acme")
    p.add_argument("--field", help="the field (needed for format-preserving tokens)")
    p.add_argument("--request-id", help="recorded in the access log with each translated token (as ID/0, ID/1, … per batch)")
    p.add_argument("tokens", nargs="+")
    p.set_defaults(run=run_translate)


def _connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default=os.environ.get("PDV_TARGET", "127.0.0.1:50051"))
    p.add_argument(
        "--api-key-file", type=Path, default=None,
        help="file holding the API key (default: $PDV_API_KEY, else .pdv/dev-api-key unless --cert is given)",
    )
    p.add_argument("--ca", type=Path, default=_env_path("PDV_TLS_CA"),
                   help="CA certificate of a TLS server (default $PDV_TLS_CA); without it the call is plaintext")
    p.add_argument("--cert", type=Path, default=_env_path("PDV_TLS_CERT"),
                   help="client certificate for mTLS (default $PDV_TLS_CERT)")
    p.add_argument("--key", type=Path, default=_env_path("PDV_TLS_KEY"),
                   help="the client certificate's private key (default $PDV_TLS_KEY)")


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _client(args: argparse.Namespace) -> PdvClient:
    # Keys come from a file or the environment, never argv (visible in the process list).
    # With a client certificate, the certificate is the credential unless a key is asked for.
    key = os.environ.get("PDV_API_KEY")
    path = args.api_key_file or (None if key or args.cert else Path(".pdv/dev-api-key"))
    if path is not None:
        try:
            key = path.read_text().strip()
        except OSError:
            raise InvalidInput(f"cannot read the API key file {path}") from None
    return PdvClient(args.target, api_key=key, credentials=_credentials(args))


def _credentials(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    if args.ca is None:
        if args.cert or args.key:
            raise InvalidInput("--cert and --key need --ca (the server's CA certificate)")
        return None
    if (args.cert is None) != (args.key is None):
        raise InvalidInput("give both --cert and --key, or neither")
    return tls_credentials(*(_read_pem(flag, p) for flag, p in (("--ca", args.ca), ("--cert", args.cert), ("--key", args.key))))


def _read_pem(flag: str, path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{flag} {path}: {exc.strerror}") from None


def _print(obj: object) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


# Exit codes of the client commands (README, "What to try next"). 2 is a usage or local input
# error (argparse's, and vault.cli.main's for a PdvError raised before any call).
EXIT_OK, EXIT_CALL_FAILED, EXIT_ITEMS_FAILED = 0, 1, 3


def _call(args: argparse.Namespace, fn, lines: bool = False, failed=None) -> int:  # type: ignore[no-untyped-def]
    """Run `fn(client)` and print its result as JSON (one line per item with `lines`).

    Exits EXIT_CALL_FAILED if the call itself failed (the status on stderr, nothing on stdout),
    EXIT_ITEMS_FAILED if it was answered but `failed(item)` holds for any item of the result.
    """
    try:
        with _client(args) as client:
            result = fn(client)
    except ClientError as exc:
        print(f"pdv: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CALL_FAILED
    if lines:
        for item in result:
            print(json.dumps(item))
    else:
        _print(result)
    if failed is not None and any(failed(item) for item in result):
        return EXIT_ITEMS_FAILED
    return EXIT_OK


def run_tokenize(args: argparse.Namespace) -> int:
    fields = {}
    for item in args.fields:
        name, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput(f"expected FIELD=VALUE, got an argument without '=' for {name[:40]!r}")
        fields[name] = value
    record = Record(fields=fields, subject_id=args.subject)

    def go(client: PdvClient) -> object:
        (result,) = client.tokenize(
            [record], purpose=args.purpose, source=args.source, notice_id=args.notice_id,
            notice_given=args.notice_given, request_id=args.request_id,
        )
        return {"subject_id": result.subject_id, "tokens": dict(result.tokens)}

    return _call(args, go)


def run_detokenize(args: argparse.Namespace) -> int:
    refs = [(t, args.field) if args.field else t for t in args.tokens]

    def go(client: PdvClient) -> object:
        return [
            {"token": r.token, "code": "OK", "field": r.field, "value": r.value} if r.code == 0
            else {"token": r.token, "code": r.to_exception().status.name, "error": r.message}  # type: ignore[union-attr]
            for r in client.detokenize(refs, purpose=args.purpose)
        ]

    return _call(args, go, failed=lambda item: item["code"] != "OK")


def run_lookup(args: argparse.Namespace) -> int:
    def go(client: PdvClient) -> object:
        return [{"subject_id": m.subject_id, "token": m.token} for m in client.lookup(args.field, args.value, purpose=args.purpose)]

    return _call(args, go)


def run_translate(args: argparse.Namespace) -> int:
    refs = [(t, args.field) if args.field else t for t in args.tokens]

    def go(client: PdvClient) -> object:
        return [
            {"token": r.token, "code": "OK", "field": r.field, "translated_token": r.translated_token} if r.code == 0
            else {"token": r.token, "code": r.to_exception().status.name, "error": r.message}  # type: ignore[union-attr]
            for r in client.translate(refs, from_domain=args.from_domain, purpose=args.purpose,
                                      request_id=args.request_id)
        ]

    return _call(args, go, failed=lambda item: item["code"] != "OK")
