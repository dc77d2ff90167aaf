"""`pdv events tail`: the caller's events to token holders, one JSON line each (no values).

    pdv events tail              # follow from the last acknowledged event, acknowledging as it prints
    pdv events tail --no-ack     # look without moving the cursor
    pdv events tail --cursor 0 --max 10

Each line: cursor, kind, time, the tokens (field, token, previous token) in the caller's own
domain, and the receipt id, correction id, fields or purpose where the kind has one.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from contextlib import closing

from pdv_client.errors import PdvError as ClientError
from pdv_client.events import Event

from vault.cli.client_cmds import EXIT_CALL_FAILED, EXIT_OK, _client, _connection_args


def add_parsers(sub: argparse._SubParsersAction) -> None:
    events = sub.add_parser("events", help="events to token holders").add_subparsers(dest="events_cmd", required=True)
    p = events.add_parser("tail", help="follow your events (shreds, corrections, consent and hold changes)")
    _connection_args(p)
    p.add_argument("--cursor", default=None, help="start after this cursor (default: after the last acknowledged)")
    p.add_argument("--max", type=int, default=0, help="stop after this many events (default: follow until Ctrl-C)")
    p.add_argument("--ack", action=argparse.BooleanOptionalAction, default=True,
                   help="acknowledge each event once printed (default); --no-ack leaves the cursor where it is")
    p.set_defaults(run=run_tail)


def line(event: Event) -> str:
    out: dict[str, object] = {"cursor": event.cursor, "kind": event.kind, "at": event.at.isoformat(),
                              "tokens": [{"field": t.field, "token": t.token, **(
                                  {"previous_token": t.previous_token} if t.previous_token else {})}
                                  for t in event.tokens]}
    for name in ("receipt_id", "correction_id", "purpose"):
        if getattr(event, name):
            out[name] = getattr(event, name)
    if event.fields:
        out["fields"] = list(event.fields)
    return json.dumps(out)


def run_tail(args: argparse.Namespace) -> int:
    stop = threading.Event()
    shown = 0
    try:
        with _client(args) as client:
            source = client.events.subscribe(args.cursor, stop=stop) if args.ack else client.events.stream(
                args.cursor or "")
            with closing(source):
                for event in source:
                    print(line(event), flush=True)
                    shown += 1
                    if args.max and shown >= args.max:
                        if args.ack:  # printed is handled; leaving the loop does not acknowledge it
                            client.events.ack(event.cursor)
                        stop.set()
                        break
    except ClientError as exc:
        print(f"pdv: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CALL_FAILED
    except KeyboardInterrupt:
        pass
    return EXIT_OK
