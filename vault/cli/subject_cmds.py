"""`pdv shred`, `pdv shred verify-receipt`, `pdv hold` and `pdv subject correct | corrections | report`:
a records officer's disposal, correction and access-report tools."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

from google.protobuf.json_format import MessageToDict
from pdv_client.errors import PdvError as ClientError

from vault.cli import admin_api
from vault.cli.client_cmds import EXIT_CALL_FAILED, EXIT_ITEMS_FAILED, EXIT_OK, _call, _client, _connection_args
from vault.services.rights.report_html import render
from vault.errors import InvalidInput


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("shred", help="crypto-shred subjects or fields; or `pdv shred verify-receipt FILE`")
    _connection_args(p)
    p.add_argument("action", nargs="*", metavar="verify-receipt FILE",
                   help="check receipts (JSON lines as printed by pdv shred) instead of shredding")
    p.add_argument("--subject", action="append", default=[], help="subject id (repeatable)")
    p.add_argument("--file", type=Path, help="file of subject ids, one per line")
    p.add_argument("--fields", help="comma-separated fields: shred only these (one --subject)")
    p.add_argument("--reason", help="why (required to shred; recorded in the receipt)")
    p.add_argument("--case", help="the privacy request (case id) this shred answers: linked to it")
    p.set_defaults(run=run_shred)

    p = sub.add_parser("hold", help="place or release a legal hold on a subject, or list the holds in force")
    _connection_args(p)
    p.add_argument("hold_action", choices=("place", "release", "list"))
    p.add_argument("--subject", help="the subject (required to place or release; with list, only its holds)")
    p.add_argument("--case", help="the legal case id (a privacy request's case id links the hold to it)")
    p.add_argument("--reason", default="", help="why (required to place)")
    p.set_defaults(run=run_hold)

    p = sub.add_parser("subject", help="correct a subject's value, list its corrections, or make its access report")
    commands = p.add_subparsers(dest="subject_command", required=True)
    c = commands.add_parser("correct", help="correct every value a subject holds of one field")
    _connection_args(c)
    c.add_argument("--subject", required=True)
    c.add_argument("--field", required=True)
    c.add_argument("--reason", required=True, help="why (kept in the correction history; no personal data)")
    c.add_argument("--case", help="the privacy request or case this correction answers")
    c.add_argument("--request-id", help="idempotency key: rerunning with it repeats the first answer")
    # Never an argument: argv lands in shell history and in the process list.
    c.add_argument("--value-file", help="file holding the corrected value ('-' for stdin); "
                                        "default: a prompt on a terminal, else stdin")
    c.set_defaults(run=run_correct)
    c = commands.add_parser("corrections", help="list a subject's correction history (no values)")
    _connection_args(c)
    c.add_argument("--subject", required=True)
    c.set_defaults(run=run_corrections)
    c = commands.add_parser("report", help="a resident's access report: what is held, why, who used it, what was "
                                           "destroyed (JSON, or a printable HTML letter)")
    _connection_args(c)
    c.add_argument("subject_id", metavar="SUBJECT")
    c.add_argument("--values", action="store_true",
                   help="include the values (plain with an export grant for subject_access, else masked)")
    c.add_argument("--case", help="the privacy request (case id) this report answers: linked to it")
    c.add_argument("--format", choices=("json", "html"), default="json")
    c.add_argument("--out", type=Path, help="write the report to this file (mode 0600) instead of stdout")
    c.set_defaults(run=run_report)


def run_shred(args: argparse.Namespace) -> int:
    if args.action:
        if len(args.action) != 2 or args.action[0] != "verify-receipt":
            raise InvalidInput("usage: pdv shred verify-receipt FILE")
        return _verify(args, Path(args.action[1]))
    ids = list(args.subject)
    if args.file:
        ids += [line.strip() for line in args.file.read_text().splitlines() if line.strip()]
    if not ids:
        raise InvalidInput("name subjects with --subject or --file")
    if not args.reason:
        raise InvalidInput("--reason is required")

    def go(client):  # type: ignore[no-untyped-def]
        if args.fields:
            if len(ids) != 1:
                raise InvalidInput("--fields shreds fields of exactly one --subject")
            outcomes = [client.shred_fields(ids[0], args.fields.split(","), reason=args.reason, case_id=args.case)]
        else:
            with tqdm(total=len(ids), unit="subject", file=sys.stderr, disable=len(ids) < 1000) as bar:
                outcomes = client.shred_subjects(ids, reason=args.reason, progress=bar.update, case_id=args.case)
        return [
            {"subject_id": o.subject_id, "status": o.status, "hold_case_ids": list(o.hold_case_ids),
             "receipt": o.receipt, "signature": o.signature}
            for o in outcomes
        ]

    # A subject on hold or unknown was not shredded: the command says so by its exit code too.
    return _call(args, go, lines=True, failed=lambda item: item["status"] not in ("shredded", "already_shredded"))


def _verify(args: argparse.Namespace, path: Path) -> int:
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                raise InvalidInput(f"{path}, line {number}: not a JSON object as printed by pdv shred")
            entries.append(entry)

    def go(client):  # type: ignore[no-untyped-def]
        return [
            {"subject_id": e.get("subject_id", ""),
             "valid": bool(e.get("receipt") and e.get("signature")) and client.verify_receipt(e["receipt"], e["signature"])}
            for e in entries
        ]

    # A receipt that does not verify is what this command exists to catch: exit 1, as `pdv audit verify` does.
    status = _call(args, go, lines=True, failed=lambda item: not item["valid"])
    return EXIT_CALL_FAILED if status == EXIT_ITEMS_FAILED else status


def run_hold(args: argparse.Namespace) -> int:
    if args.hold_action == "list":
        return admin_api.hold_list(args)  # AdminService (the `holds` grant): one JSON line per hold
    if not args.subject or not args.case:
        raise InvalidInput("--subject and --case are required to place or release a hold")
    if args.hold_action == "place":
        if not args.reason:
            raise InvalidInput("--reason is required to place a hold")
        return _call(args, lambda c: {"placed": c.place_hold(args.subject, case_id=args.case, reason=args.reason)})
    return _call(args, lambda c: {"released": c.release_hold(args.subject, case_id=args.case)})


def run_correct(args: argparse.Namespace) -> int:
    value = _new_value(args.value_file)

    def go(client):  # type: ignore[no-untyped-def]
        values = client.correct_value(args.subject, args.field, value, reason=args.reason, case_id=args.case,
                                      request_id=args.request_id)
        return {"subject_id": args.subject, "field": args.field,
                "values": [{"purpose": v.purpose, "token": v.token, "token_changed": v.token_changed} for v in values]}

    return _call(args, go)


def run_corrections(args: argparse.Namespace) -> int:
    def go(client):  # type: ignore[no-untyped-def]
        return [
            {"field": c.field, "purpose": c.purpose, "token": c.token, "corrected_at": c.corrected_at.isoformat(),
             "corrected_by": c.corrected_by, "reason": c.reason, "case_id": c.case_id, "request_id": c.request_id,
             "old_value_fingerprint": c.old_value_fingerprint}
            for c in client.list_corrections(args.subject)
        ]

    return _call(args, go, lines=True)


def run_report(args: argparse.Namespace) -> int:
    try:
        with _client(args) as client:
            report = client.access_report(args.subject_id, case_id=args.case, include_values=args.values)
    except ClientError as exc:
        print(f"pdv: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CALL_FAILED
    data = MessageToDict(report, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    text = render(data) if args.format == "html" else json.dumps(data, indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return EXIT_OK
    # The report may hold personal values: readable by its owner only, from the first byte.
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(args.out, 0o600)
    return EXIT_OK


def _new_value(source: str | None) -> str:
    """The corrected value from a file, stdin or a prompt, without its final newline."""
    if source is None and sys.stdin.isatty():
        value = getpass.getpass("corrected value: ")
    elif source is None or source == "-":
        value = sys.stdin.read()
    else:
        try:
            value = Path(source).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            raise InvalidInput(f"cannot read the value file {source}") from None
    value = value[:-1] if value.endswith("\n") else value
    value = value[:-1] if value.endswith("\r") else value
    if not value:
        raise InvalidInput("the corrected value is empty")
    return value
