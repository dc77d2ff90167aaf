"""`pdv disclose`: rewrite an export (CSV or JSON Lines) for a public-disclosure request.

The file is streamed: records are read, sent in batches to DisclosureService and written as
they come back, so memory holds one batch whatever the file's size. What is sent:

- every non-empty value of a column named for a field (`--columns COL=FIELD`, or the
  config's `disclosure_columns`), as that field's token: the only way a format-preserving
  token, which looks like a value (9 digits for an SSN), is recognised;
- in any other column, a value that is exactly an opaque token (`pdv_` + 22 characters, the
  server's strict syntax, vault/crypto/tokens.py).

Everything else is left as it is, except in a personal column (the config's
`disclosure_personal_columns`, `--personal`): there a non-empty value that is not a token (no
token syntax, or NOT_A_TOKEN from the server) refuses the whole file, exit 2, and no output
is left behind (it is written to a temporary file beside --out and renamed at the end).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pdv_client import PdvClient
from pdv_client.errors import PdvError as ClientError
from tqdm import tqdm

from vault.cli.client_cmds import EXIT_CALL_FAILED, EXIT_OK, _client, _connection_args, _print
from vault.config import load_settings
from vault.crypto.tokens import is_opaque_token
from vault.errors import InvalidInput

FORMATS = ("csv", "jsonl")
DEFAULT_BATCH = 1000


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("disclose", help="rewrite the tokens of an export for a public-disclosure request")
    _connection_args(p)
    p.add_argument("--config", type=Path, help="config file (TOML) naming disclosure_columns and "
                   "disclosure_personal_columns; PDV_* variables override it")
    p.add_argument("--purpose", required=True, help="the disclosure purpose, e.g. public_disclosure")
    p.add_argument("--case", required=True, help="the open disclosure request (req_…) this answers")
    p.add_argument("--in", dest="source", type=Path, required=True, help="the export: .csv or .jsonl")
    p.add_argument("--out", type=Path, required=True, help="where to write the rewritten file")
    p.add_argument("--format", choices=FORMATS, help="the files' format (default: from --in's suffix)")
    p.add_argument("--columns", action="append", default=[], metavar="COL[=FIELD],...",
                   help="columns holding a field's tokens (FIELD defaults to COL): needed for format-preserving "
                        "tokens; adds to the config's disclosure_columns")
    p.add_argument("--personal", action="append", default=[], metavar="COL,...",
                   help="more personal columns: refused unless every value is a token")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="items per call (default 1000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")
    p.set_defaults(run=run_disclose)


@dataclass
class Plan:
    """Which columns are sent as which field, and which are personal."""

    fields: dict[str, str] = field(default_factory=dict)
    personal: frozenset[str] = frozenset()

    def item(self, column: str | None, value: Any) -> str | tuple[str, str] | None:
        """What to send for one cell (None: nothing); personal columns are checked on the answer."""
        if not isinstance(value, str) or not value:
            return None
        if column is not None and column in self.fields:
            return (value, self.fields[column])
        return value if is_opaque_token(value) else None


def plan_for(args: argparse.Namespace) -> Plan:
    settings = load_settings(args.config)
    fields = dict(settings.disclosure_columns)
    for spec in _split(args.columns):
        column, _, name = spec.partition("=")
        fields[column] = name or column
    personal = set(settings.disclosure_personal_columns) | set(_split(args.personal))
    return Plan(fields, frozenset(personal))


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def refusal(number: int, column: str) -> InvalidInput:
    # Names the record and column, never the value.
    return InvalidInput(f"record {number}, column {column[:64]!r}: a personal column (disclosure_personal_columns "
                        "or --personal) holds a value that is not a PDV token; nothing was written")


class Rewriter:
    """Sends the pending records' items, puts the answers in place, and writes the records."""

    def __init__(self, client: PdvClient, args: argparse.Namespace, plan: Plan, write,  # type: ignore[no-untyped-def]
                 pool: ThreadPoolExecutor) -> None:
        self.client, self.args, self.plan, self.write, self.pool = client, args, plan, write, pool
        self.in_flight: tuple[tuple[list, list, list], Future | None] | None = None
        self.run_id = f"disclose-{uuid.uuid4().hex[:12]}"
        self.calls = 0
        self.counts: Counter[str] = Counter()
        self.records = 0
        self.pending: list[tuple[int, Any]] = []  # (record number, record)
        self.items: list[str | tuple[str, str]] = []
        self.places: list[tuple[int, Any, str | None]] = []  # (index in pending, key, column name)

    def add(self, number: int, record: Any, cells: Iterator[tuple[Any, str | None, Any]]) -> None:
        self.pending.append((number, record))
        for key, column, value in cells:
            item = self.plan.item(column, value)
            if item is not None:
                self.items.append(item)
                self.places.append((len(self.pending) - 1, key, column))
            elif column in self.plan.personal and value not in (None, ""):
                raise refusal(number, str(column))
        if len(self.items) >= self.args.batch_size or len(self.pending) >= self.args.batch_size:
            self.flush()

    def flush(self) -> None:
        """Send the pending records' items and write the batch before them: one call is in
        flight while the next batch is read (two batches in memory at most)."""
        batch = (self.pending, self.items, self.places)
        self.pending, self.items, self.places = [], [], []
        sent = None
        if batch[1]:
            sent = self.pool.submit(self.client.disclosure.disclose, batch[1], purpose=self.args.purpose,
                                    case_id=self.args.case, request_id=f"{self.run_id}/{self.calls}",
                                    batch_size=self.args.batch_size)
            self.calls += 1
        self.finish()
        self.in_flight = (batch, sent)

    def finish(self) -> None:
        """Wait for the batch in flight, put its answers in place and write its records."""
        if self.in_flight is None:
            return
        (pending, _, places), sent = self.in_flight
        self.in_flight = None
        for (index, key, column), answer in zip(places, sent.result() if sent is not None else ()):
            self.counts[answer.outcome] += 1
            if answer.outcome == "not_a_token":
                if column in self.plan.personal:
                    raise refusal(pending[index][0], str(column))
                continue
            pending[index][1][key] = answer.text
        for _, record in pending:
            self.write(record)
        self.records += len(pending)


def run_disclose(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise InvalidInput("--batch-size must be at least 1")
    fmt = args.format or args.source.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise InvalidInput(f"cannot tell the format of {args.source.name}: name it .csv or .jsonl, or give --format")
    if args.out.resolve() == args.source.resolve():
        raise InvalidInput("--out must not be --in: the export is read while the answer is written")
    plan = plan_for(args)
    try:
        # utf-8-sig: a spreadsheet's export often starts with a byte-order mark, which would
        # otherwise become part of the first column's name.
        source = args.source.open("r", encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InvalidInput(f"--in {args.source}: {exc.strerror}") from None
    try:
        # Beside --out, so the final rename is atomic; mode 0600 until the answer is complete.
        fd, temp = tempfile.mkstemp(prefix=f".{args.out.name}.", suffix=".partial", dir=args.out.resolve().parent)
    except OSError as exc:
        source.close()
        raise InvalidInput(f"--out {args.out}: {exc.strerror}") from None
    done = False
    try:
        with source, os.fdopen(fd, "w", encoding="utf-8", newline="") as sink, \
                tqdm(total=os.fstat(source.fileno()).st_size, unit="B", unit_scale=True, desc="disclose",
                     disable=True if args.no_progress else None, file=sys.stderr) as bar:
            with _client(args) as client, ThreadPoolExecutor(1, thread_name_prefix="disclose") as pool:
                rewriter = _stream(client, args, plan, fmt, source, sink, bar, pool)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temp, 0o666 & ~mask)  # complete: the mode any new file gets
        os.replace(temp, args.out)
        done = True
    except ClientError as exc:
        print(f"pdv: {type(exc).__name__}: {exc}; nothing was written", file=sys.stderr)
        return EXIT_CALL_FAILED
    except (csv.Error, UnicodeDecodeError) as exc:
        # Named by kind only: the error's own text may quote the file's bytes.
        raise InvalidInput(f"--in {args.source.name}: not readable as UTF-8 {fmt} ({type(exc).__name__}); "
                           "nothing was written") from None
    finally:
        if not done:
            os.unlink(temp)
    _print({"records": rewriter.records, "calls": rewriter.calls, "out": str(args.out),
            **{k: rewriter.counts[k] for k in ("public", "masked", "redacted", "not_a_token")}})
    return EXIT_OK


def _stream(client: PdvClient, args: argparse.Namespace, plan: Plan, fmt: str, source: TextIO, sink: TextIO,
            bar: tqdm, pool: ThreadPoolExecutor) -> Rewriter:
    done_bytes = 0

    def progress() -> None:
        nonlocal done_bytes
        position = source.buffer.tell()  # type: ignore[attr-defined]
        bar.update(position - done_bytes)
        done_bytes = position

    if fmt == "csv":
        reader, writer = csv.reader(source), csv.writer(sink)
        header = next(reader, None)
        if header is None:
            return Rewriter(client, args, plan, writer.writerow, pool)
        writer.writerow(header)
        rewriter = Rewriter(client, args, plan, writer.writerow, pool)
        for number, row in enumerate(reader, start=1):
            rewriter.add(number, row, ((i, header[i] if i < len(header) else None, v) for i, v in enumerate(row)))
            if not rewriter.pending:
                progress()
    else:
        rewriter = Rewriter(client, args, plan, lambda record: sink.write(_json_line(record)), pool)
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise InvalidInput(f"line {number}: not valid JSON; nothing was written") from None
            if not isinstance(record, dict):
                raise InvalidInput(f"line {number}: not a JSON object; nothing was written")
            rewriter.add(number, record, ((k, k, v) for k, v in record.items()))
            if not rewriter.pending:
                progress()
    rewriter.flush()
    rewriter.finish()
    progress()
    return rewriter


def _json_line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"
