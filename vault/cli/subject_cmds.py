"""`pdv shred`, `pdv shred verify-receipt` and `pdv hold`: a records officer's disposal tools."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from vault.cli.client_cmds import EXIT_CALL_FAILED, EXIT_ITEMS_FAILED, _call, _connection_args
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

    p = sub.add_parser("hold", help="place or release a legal hold on a subject")
    _connection_args(p)
    p.add_argument("hold_action", choices=("place", "release"))
    p.add_argument("--subject", required=True)
    p.add_argument("--case", required=True, help="the legal case id (a privacy request's case id links the hold to it)")
    p.add_argument("--reason", default="", help="why (required to place)")
    p.set_defaults(run=run_hold)


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
    if args.hold_action == "place":
        if not args.reason:
            raise InvalidInput("--reason is required to place a hold")
        return _call(args, lambda c: {"placed": c.place_hold(args.subject, case_id=args.case, reason=args.reason)})
    return _call(args, lambda c: {"released": c.release_hold(args.subject, case_id=args.case)})
