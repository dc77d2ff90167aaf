"""`pdv requests open|list|show|update|close|overdue`: a privacy officer's case handling.

A request's texts (description, contact, response) are personal data, so they are read from
a file or standard input (`-`), never from the command line, where every user of the
machine can see them in the process list.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pdv_client import PdvClient, PrivacyRequest, RequestCase
from pdv_client.privacy_requests import KINDS, STATUSES

from vault.cli.client_cmds import _call, _connection_args
from vault.errors import InvalidInput

FINAL = ("answered", "rejected", "withdrawn")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("requests", help="residents' privacy requests and complaints")
    cmds = p.add_subparsers(dest="requests_command", required=True)

    c = cmds.add_parser("open", help="record a request; prints it with its case id and due date")
    _connection_args(c)
    c.add_argument("--kind", required=True, choices=KINDS)
    c.add_argument("--subject", help="the subject it is about (complaints and disclosure requests may name none)")
    c.add_argument("--description-file", type=Path, required=True, help="what was asked ('-': standard input)")
    c.add_argument("--contact-file", type=Path, help="how to reach the requester ('-': standard input)")
    c.set_defaults(run=run_open)

    c = cmds.add_parser("list", help="requests, newest first (no free text)")
    _connection_args(c)
    c.add_argument("--status", choices=STATUSES)
    c.add_argument("--kind", choices=KINDS)
    c.add_argument("--subject")
    c.add_argument("--open", action="store_true", help="only requests not yet closed")
    c.set_defaults(run=run_list)

    c = cmds.add_parser("show", help="one request: its texts, history and the actions taken under it")
    _connection_args(c)
    c.add_argument("case")
    c.set_defaults(run=run_show)

    c = cmds.add_parser("update", help="move a request along (received -> in_progress) and/or set its response")
    _connection_args(c)
    c.add_argument("case")
    c.add_argument("--status", choices=STATUSES)
    c.add_argument("--response-file", type=Path, help="the response text ('-': standard input)")
    c.set_defaults(run=run_update)

    c = cmds.add_parser("close", help="close a request as answered, rejected or withdrawn")
    _connection_args(c)
    c.add_argument("case")
    c.add_argument("--as", dest="status", required=True, choices=FINAL)
    c.add_argument("--response-file", type=Path,
                   help="the response text ('-': standard input); needed to answer or reject unless set before")
    c.set_defaults(run=run_update)

    c = cmds.add_parser("overdue", help="open requests past their due date, the longest overdue first")
    _connection_args(c)
    c.set_defaults(run=run_overdue)


def _read(flag: str, path: Path | None) -> str:
    if path is None:
        return ""
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{flag} {path}: cannot read it ({type(exc).__name__})") from None


def _summary(r: PrivacyRequest) -> dict:
    return {
        "case_id": r.case_id, "kind": r.kind, "subject_id": r.subject_id, "status": r.status,
        "received_at": r.received_at.isoformat(), "due_at": r.due_at.isoformat(),
        "closed_at": r.closed_at.isoformat() if r.closed_at else None, "opened_by": r.opened_by,
    }


def _case(case: RequestCase) -> dict:
    return {
        **_summary(case.request), "description": case.description, "contact": case.contact,
        "response_text": case.response_text,
        "history": [{"from": h.from_status, "to": h.to_status, "by": h.principal, "at": h.at.isoformat(),
                     "response_set": h.response_set} for h in case.history],
        "actions": [{"action": a.action, "subject_id": a.subject_id, "detail": a.detail, "outcome": a.outcome,
                     "by": a.principal, "at": a.at.isoformat()} for a in case.actions],
    }


def run_open(args: argparse.Namespace) -> int:
    description = _read("--description-file", args.description_file)
    contact = _read("--contact-file", args.contact_file)
    return _call(args, lambda c: _summary(c.requests.open(args.kind, subject_id=args.subject, description=description,
                                                          contact=contact)))


def run_list(args: argparse.Namespace) -> int:
    def go(client: PdvClient) -> object:
        found = client.requests.list(status=args.status, kind=args.kind, subject_id=args.subject, open_only=args.open)
        return [_summary(r) for r in found]
    return _call(args, go, lines=True)


def run_show(args: argparse.Namespace) -> int:
    return _call(args, lambda c: _case(c.requests.show(args.case)))


def run_update(args: argparse.Namespace) -> int:
    response = _read("--response-file", args.response_file)
    if not args.status and not response:
        raise InvalidInput("nothing to change: give --status, --response-file, or both")
    return _call(args, lambda c: _summary(c.requests.update(args.case, status=args.status, response_text=response)))


def run_overdue(args: argparse.Namespace) -> int:
    return _call(args, lambda c: [_summary(r) for r in c.requests.overdue()], lines=True)
