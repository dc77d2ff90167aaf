"""Access-log chain heads, checkpoints, and reading the log back (verify, query, export)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, insert, select

from vault.storage import tables as t
from vault.storage.access_items import decode_items
from vault.storage.engine import READ_ONLY
from vault.storage.store import Store

ENTRY_FIELDS = ("request_id", "principal", "action", "purpose", "subject_id", "field", "token", "outcome")


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of an access-log entry: what query, export and the access report read.

    The items of one entry share its id, time, chain position and MAC; `item` is the item's
    position in it (0 for an entry of one item, as every entry before migration 0009)."""

    id: int
    at: datetime  # aware, UTC
    fields: tuple[str | None, ...]  # ENTRY_FIELDS order
    chain_id: str | None
    seq: int | None
    mac: bytes | None
    item: int = 0


@dataclass(frozen=True, slots=True)
class LogRow:
    """An access-log entry as stored, what verify recomputes: its columns (ENTRY_FIELDS order;
    subject, field and token NULL when `items` holds its items) and its items column."""

    id: int
    at: datetime  # aware, UTC
    fields: tuple[str | None, ...]
    items: bytes | None
    chain_id: str | None
    seq: int | None
    mac: bytes | None

    def expanded(self) -> list[Entry]:
        """Its items as Entry records; one with every item column None (outcome UNDECODABLE)
        when the items column cannot be decoded (verify reports its MAC)."""
        if self.items is None:
            return [Entry(self.id, self.at, self.fields, self.chain_id, self.seq, self.mac)]
        head = self.fields[:4]
        try:
            items = decode_items(self.items)
        except ValueError:
            return [Entry(self.id, self.at, (*head, None, None, None, UNDECODABLE), self.chain_id, self.seq, self.mac)]
        return [Entry(self.id, self.at, (*head, *item), self.chain_id, self.seq, self.mac, n)
                for n, item in enumerate(items)]


UNDECODABLE = "undecodable"  # the outcome query and export show for an items column that does not decode


def subject_items(row: LogRow, subject_id: str) -> Iterator[Entry]:
    """The items of a stored entry that name `subject_id` (an entry may name several subjects)."""
    return (e for e in row.expanded() if e.fields[4] == subject_id)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    chain_id: str
    seq: int
    mac: bytes
    at: str
    signature: str


@dataclass(frozen=True, slots=True)
class EntryFilter:
    subject_id: str | None = None
    principal: str | None = None
    purpose: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditRepository:
    """The audit tables; each method is its own short transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def register_chain(self, chain_id: str, started_at: datetime, genesis: bytes) -> None:
        with self.store.transaction() as tx:
            tx.conn.execute(insert(t.audit_chains).values(chain_id=chain_id, started_at=started_at, seq=0, mac=genesis))

    def add_checkpoint(self, cp: Checkpoint) -> None:
        """Store a checkpoint; one already stored (a retry whose first try landed) is left as is."""
        c = t.audit_checkpoints.c
        with self.store.transaction() as tx:
            if tx.conn.execute(select(c.id).where(c.chain_id == cp.chain_id, c.seq == cp.seq)).first() is None:
                tx.conn.execute(insert(t.audit_checkpoints).values(
                    chain_id=cp.chain_id, seq=cp.seq, mac=cp.mac, at=cp.at, signature=cp.signature,
                ))

    def chain_heads(self) -> dict[str, tuple[int, bytes]]:
        c = t.audit_chains.c
        with self.store.snapshot() as tx:
            return {r.chain_id: (r.seq, bytes(r.mac)) for r in tx.conn.execute(select(c.chain_id, c.seq, c.mac))}

    def checkpoints(self) -> list[Checkpoint]:
        c = t.audit_checkpoints.c
        with self.store.snapshot() as tx:
            rows = tx.conn.execute(select(c.chain_id, c.seq, c.mac, c.at, c.signature).order_by(c.id)).all()
        return [Checkpoint(r.chain_id, r.seq, bytes(r.mac), r.at, r.signature) for r in rows]

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """One read-only snapshot for several streams (log_rows and index_rows of one verify),
        so they agree with each other while the server writes; it takes no lock."""
        with self.store.engine.connect() as conn:
            options: dict = {READ_ONLY: True}
            if self.store.dialect == "postgresql":
                options["isolation_level"] = "REPEATABLE READ"  # one snapshot for every statement
            conn.execution_options(**options)
            with conn.begin():
                yield conn

    def entries(self, where: EntryFilter | None = None, batch: int = 10_000) -> Iterator[Entry]:
        """Every item of every entry (or those matching `where`) in entry id order, streamed.

        A subject filter reads through the per-subject index (subject_entries)."""
        if where is not None and where.subject_id is not None:
            for e in self.subject_entries(where.subject_id, where.since, where.until):
                if all(v is None or e.fields[i] == v for i, v in ((1, where.principal), (3, where.purpose),
                                                                  (2, where.action))):
                    yield e
            return
        for row in self.log_rows(where, batch):
            yield from row.expanded()

    def subject_entries(self, subject_id: str, since: datetime | None = None,
                        until: datetime | None = None) -> Iterator[Entry]:
        """The items naming `subject_id` (since inclusive, until exclusive), in entry id order,
        found through the per-subject index: a person's accesses without a scan of the log."""
        for row in self.subject_rows(subject_id, since, until):
            yield from subject_items(row, subject_id)

    def subject_rows(self, subject_id: str, since: datetime | None = None,
                     until: datetime | None = None) -> Iterator[LogRow]:
        """The stored entries naming `subject_id` among their items, in id order, through the
        per-subject index (what subject_entries expands; the access report checks them as read)."""
        c = t.access_log.c
        s = t.access_subjects.c
        stmt = (select(*self._row_columns()).join(t.access_subjects, s.entry_id == c.id)
                .where(s.subject_id == subject_id).order_by(c.id))
        stmt = self._within(stmt, since, until)
        yield from self._stream(stmt, 10_000)

    def log_rows(self, where: EntryFilter | None = None, batch: int = 10_000,
                 conn: Connection | None = None) -> Iterator[LogRow]:
        """Every entry as stored (or those whose columns match `where`; its subject filter
        matches only entries of one item), in id order, streamed."""
        c = t.access_log.c
        stmt = select(*self._row_columns()).order_by(c.id)
        if where is not None:
            for name, value in (("subject_id", where.subject_id), ("principal", where.principal),
                                ("purpose", where.purpose), ("action", where.action)):
                if value is not None:
                    stmt = stmt.where(c[name] == value)
            stmt = self._within(stmt, where.since, where.until)
        yield from self._stream(stmt, batch, conn)

    def rows_by_id(self, ids: list[int]) -> dict[int, LogRow]:
        """The stored entries of these ids (those that exist)."""
        c = t.access_log.c
        out: dict[int, LogRow] = {}
        if self.store.dialect == "postgresql" and ids:
            # One probe of the primary key per id, whatever the statistics: planned before the
            # log was analyzed, `id IN (…)` scanned the whole log.
            with self.store.snapshot() as tx:
                return {row.id: row for row in map(_log_row, tx.fetch(_ROWS_BY_ID_PG, (list(ids),)))}
        for start in range(0, len(ids), 500):
            stmt = select(*self._row_columns()).where(c.id.in_(ids[start:start + 500]))
            out.update((row.id, row) for row in self._stream(stmt, 500))
        return out

    def predecessors(self, chain_id: str, entry_ids: list[int]) -> dict[int, tuple[int, bytes | None]]:
        """The (seq, mac) of the nearest entry before each of `entry_ids` on one chain (left out where
        there is none), in one read transaction, each found by the (chain_id, id) index (0012)."""
        out: dict[int, tuple[int, bytes | None]] = {}
        if not entry_ids:
            return out
        with self.store.snapshot() as tx:
            if self.store.dialect == "postgresql":
                # One statement for all of them: a backward probe of the (chain_id, id) index per id.
                rows = tx.fetch(_PREDECESSORS_PG, (list(entry_ids), chain_id))
            else:
                rows = tx.fetch(_PREDECESSORS_SQLITE, (json.dumps(list(entry_ids)), chain_id))
        for entry_id, seq, mac in rows:
            out[entry_id] = (seq, bytes(mac) if mac is not None else None)
        return out

    def newest_checkpoints(self, chain_id: str, batch: int = 8) -> Iterator[Checkpoint]:
        """The chain's checkpoints in the database, newest (highest seq) first, read a few at a
        time from the (chain_id, seq) index: the caller usually stops at the first."""
        c = t.audit_checkpoints.c
        below: int | None = None
        while True:
            stmt = select(c.chain_id, c.seq, c.mac, c.at, c.signature).where(c.chain_id == chain_id)
            if below is not None:
                stmt = stmt.where(c.seq < below)
            with self.store.snapshot() as tx:
                rows = tx.conn.execute(stmt.order_by(c.seq.desc()).limit(batch)).all()
            yield from (Checkpoint(r.chain_id, r.seq, bytes(r.mac), r.at, r.signature) for r in rows)
            if len(rows) < batch:
                return
            below = rows[-1].seq

    def index_rows(self, batch: int = 10_000, conn: Connection | None = None) -> Iterator[tuple[int, str]]:
        """The per-subject index as (entry id, subject id), in entry id order, streamed."""
        s = t.access_subjects.c
        stmt = select(s.entry_id, s.subject_id).order_by(s.entry_id, s.subject_id)
        with self._connection(conn) as c:
            for r in c.execution_options(yield_per=batch).execute(stmt):
                yield r[0], r[1]

    def _row_columns(self) -> tuple:
        c = t.access_log.c
        return (c.id, c.at, *(c[name] for name in ENTRY_FIELDS), c["items"], c.chain_id, c.seq, c.mac)

    def _within(self, stmt, since: datetime | None, until: datetime | None):  # type: ignore[no-untyped-def]
        c = t.access_log.c
        if since is not None:
            stmt = stmt.where(c.at >= _naive_on_sqlite(since, self.store.dialect))
        if until is not None:
            stmt = stmt.where(c.at < _naive_on_sqlite(until, self.store.dialect))
        return stmt

    @contextmanager
    def _connection(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
            return
        with self.reading() as own:
            yield own

    def _stream(self, stmt, batch: int, conn: Connection | None = None) -> Iterator[LogRow]:  # type: ignore[no-untyped-def]
        with self._connection(conn) as c:
            for r in c.execution_options(yield_per=batch).execute(stmt):
                yield _log_row(r)


def _log_row(r: Sequence) -> LogRow:
    """A LogRow from the columns of _row_columns, in their order."""
    at = r[1] if r[1].tzinfo is not None else r[1].replace(tzinfo=timezone.utc)
    return LogRow(r[0], at, tuple(r[2:10]), _blob(r[10]), r[11], r[12], _blob(r[13]))


# Each id's predecessor on the chain, by a backward probe of the (chain_id, id) index (a LATERAL
# join, so the plan is a nested loop of index probes whatever the table's statistics).
_PREDECESSORS_PG = (
    "SELECT c.id, p.seq, p.mac FROM unnest(%s::bigint[]) AS c(id) CROSS JOIN LATERAL "
    "(SELECT seq, mac FROM access_log WHERE chain_id = %s AND id < c.id ORDER BY id DESC LIMIT 1) AS p"
)


# The same on SQLite: the ids as one JSON parameter, each predecessor's id a seek of the
# (chain_id, id) index, then its row by primary key.
_PREDECESSORS_SQLITE = (
    "SELECT c.value, l.seq, l.mac FROM json_each(?) AS c JOIN access_log AS l ON l.id = "
    "(SELECT max(id) FROM access_log WHERE chain_id = ? AND id < c.value)"
)

# The same columns as _row_columns; LIMIT 1 keeps the planner from turning the probes into a
# join it may then plan as a scan (the ids are unique, so it drops nothing).
_ROWS_BY_ID_PG = (
    "SELECT l.* FROM unnest(%s::bigint[]) AS c(id) CROSS JOIN LATERAL "
    f"(SELECT id, at, {', '.join(ENTRY_FIELDS)}, items, chain_id, seq, mac FROM access_log "
    "WHERE id = c.id LIMIT 1) AS l"
)


def _blob(value: object) -> bytes | None:
    # SQLite hands back whatever was stored: text put into a binary column by hand reads as str.
    if value is None or isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else bytes(value)  # type: ignore[call-overload]


def _naive_on_sqlite(value: datetime, dialect: str) -> datetime:
    # SQLite compares the stored text: UTC without an offset.
    if dialect == "sqlite" and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value
