"""The repository: one Store, one short transaction per batch, SQL kept in this module.

`Store.transaction()` yields a `Tx` whose methods are the only queries the domain
uses. Driver errors become StoreUnavailable here, so callers never see SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, and_, func, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from vault.errors import Conflict, StoreUnavailable
from vault.storage import holders
from vault.storage import tables as t
from vault.storage.access_items import group_requests, subjects_of
from vault.storage.engine import READ_ONLY, is_sqlite_file
from vault.storage.insert_queue import InsertQueue
from vault.storage.sqlite_locks import SqliteWriterQueue
from vault.storage.rows import (
    CHAIN_COLUMNS, ENTRY_COLUMNS, KEY_COLUMNS, RECORD_COLUMNS, REQUEST_COLUMNS, SUBJECT_COLUMNS, VALUE_COLUMNS,
    AccessChain, ChainHead, IndexMatch, KeyRow, ValueRow,
)
from vault.storage.wal import WalCheckpointer

log = logging.getLogger("pdv.storage")


class Store:
    """Gives out transactions on one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # SQLite has one writer at a time, and its busy handler sleeps (up to 100 ms a try)
        # while another connection holds the lock. Queue writers instead, so they hand over at once.
        self._writer: contextlib.AbstractContextManager = (
            SqliteWriterQueue(engine.url.database) if self.dialect == "sqlite" else contextlib.nullcontext()
        )
        self._chain: AccessChain | None = None
        database = engine.url.database
        self._checkpointer = (
            WalCheckpointer(database) if self.dialect == "sqlite" and is_sqlite_file(database) else None
        )

    def attach_chain(self, chain: AccessChain) -> None:
        """Chain every access-log row written from now on (bootstrap does this once)."""
        self._chain = chain

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self.engine.dispose()
        if isinstance(self._writer, SqliteWriterQueue):
            self._writer.close()

    def ping(self) -> None:
        """A `SELECT 1` on a connection from the pool (the health probe).

        For an SQLite file, also that the file is still where it was opened: pooled
        connections keep reading a file that was moved or deleted under them, which a
        `SELECT 1` on them cannot notice.

        Raises:
            StoreUnavailable: the database does not answer, or its file is gone.
        """
        database = self.engine.url.database
        if self.dialect == "sqlite" and is_sqlite_file(database) and not os.path.isfile(database):
            raise StoreUnavailable("database unavailable (its file is gone)")
        with self.snapshot() as tx:
            tx.fetch("SELECT 1")

    @contextmanager
    def transaction(self) -> Iterator["Tx"]:
        """A write transaction: commit on normal exit, roll back on any exception.

        Access-log rows are held back and written last, one entry per request
        (vault.storage.access_items), sealed into the chain just before the commit: the chain
        lock then covers only those inserts and the commit, never a wait for another
        transaction's row locks.
        """
        chain, held, head = self._chain, False, None
        with self._translated(), self._writer:
            try:
                with self.engine.begin() as conn:
                    tx = Tx(conn, self.dialect)
                    yield tx
                    tx.write_queued()
                    if tx.pending_access:
                        entries = group_requests(tx.pending_access)
                        if chain is None:
                            rows = [(*r, None, None, None) for r in entries]
                        else:
                            chain.lock.acquire()
                            held = True
                            rows, head = chain.seal(entries)
                        tx.pending_access = []
                        tx.add_entries(rows)
                        if head is not None:
                            tx.save_chain_head(head, rows[0][0])
                if held:
                    chain.advance(head)  # type: ignore[union-attr,arg-type]  # committed: the head moves
                if self._checkpointer is not None:
                    self._checkpointer.nudge()
            except BaseException:
                if held:
                    chain.abandon()  # type: ignore[union-attr]
                raise
            finally:
                if held:
                    chain.lock.release()  # type: ignore[union-attr]

    @contextmanager
    def snapshot(self) -> Iterator["Tx"]:
        """A read-only transaction that never waits for writers (use it for reads that
        precede a write transaction; re-check in the write transaction what must hold)."""
        with self._translated(), self.engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                yield Tx(conn, self.dialect)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Driver errors become domain errors, so callers never see SQLAlchemy."""
        # `from None`: SQLAlchemy's messages quote statement parameters (tokens,
        # ciphertexts); only the driver's error class reaches the log.
        failure: Exception | None = None
        try:
            yield
        # The drivers' own errors come from the statements Tx sends to the driver directly.
        except (IntegrityError, psycopg.IntegrityError, sqlite3.IntegrityError) as exc:
            log.info("integrity conflict (%s)", type(getattr(exc, "orig", exc)).__name__)
            failure = Conflict("the request conflicts with a concurrent change; retry it")
        except (OperationalError, psycopg.OperationalError, sqlite3.OperationalError) as exc:
            log.warning("database unavailable (%s)", type(getattr(exc, "orig", exc)).__name__)
            failure = StoreUnavailable("database unavailable")
        except (psycopg.Error, sqlite3.Error) as exc:
            log.error("database error (%s)", type(exc).__name__)
            failure = StoreUnavailable("database error")
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                log.error("database error (%s)", type(exc.orig).__name__)
                failure = StoreUnavailable("database error")
            else:
                failure = StoreUnavailable("database unavailable")
        if failure is not None:
            raise failure


class Tx:
    """The queries of one transaction."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self._mark = "%s" if dialect == "postgresql" else "?"
        self.pending_access: list[tuple] = []
        self.queued = InsertQueue()
        # The hot statements go to the driver's connection directly, inside the transaction
        # SQLAlchemy began on it: Core's execution context and result processing cost more
        # than the statement itself on a one-item call. Cursor-execute listeners (tracing,
        # tests) still see them (`_cursor`); SQLAlchemy's own statement log does not.
        self._driver = conn.connection.driver_connection

    def _marks(self, n: int) -> str:
        return ", ".join([self._mark] * n)

    def db_time(self, value: datetime) -> datetime | str:
        """`value` as a driver-level statement binds it: as is on PostgreSQL, in SQLAlchemy's text format on SQLite."""
        return value if self.dialect == "postgresql" else _sqlite_time(value)  # type: ignore[return-value]

    # --- plain SQL, for query modules whose statements run on a hot path ------------------
    def marks(self, n: int) -> str:
        """`n` comma-separated parameter placeholders of this database's driver."""
        return self._marks(n)

    def one_of(self, values: Sequence) -> tuple[str, list]:
        """`IN (...)` over `values` as this database's driver takes it best, and its parameters.

        PostgreSQL gets one array (`= ANY(%s)`): one parameter and one statement text
        whatever the count, which the driver can prepare, where a thousand-item IN list cost
        more to parse and plan than to run. SQLite gets a placeholder per value.
        """
        if self.dialect == "postgresql":
            return "= ANY(%s)", [list(values)]
        return f"IN ({self._marks(len(values))})", list(values)

    def fetch(self, sql: str, params: Sequence = ()) -> list:
        """Rows of a driver-level statement (placeholders from `marks`)."""
        return self._fetch(sql, params)

    def execute(self, sql: str, params: Sequence = ()) -> int:
        """Run a driver-level statement; the number of rows it changed."""
        with self._cursor(sql, tuple(params)) as cursor:
            cursor.execute(sql, tuple(params))
            return cursor.rowcount

    def execute_many(self, sql: str, rows: Sequence[tuple]) -> None:
        """Run a driver-level statement once per parameter tuple."""
        with self._cursor(sql, rows, many=True) as cursor:
            cursor.executemany(sql, rows)

    def insert_rows(self, table: str, columns: tuple[str, ...], rows: Sequence[tuple], time_columns: tuple[int, ...]) -> None:
        """Bulk-insert tuples in `columns` order; `time_columns` are the positions of datetimes."""
        self._bulk_insert(table, columns, rows, time_columns)

    def _fetch(self, sql: str, params: Sequence) -> list:
        with self._cursor(sql, tuple(params)) as cursor:
            cursor.execute(sql, tuple(params))
            return cursor.fetchall()

    @contextmanager
    def _cursor(self, sql: str, params: object, many: bool = False) -> Iterator[Any]:
        """A driver cursor for one statement, announced to the engine's cursor-execute listeners."""
        conn, dispatch = self.conn, self.conn.dispatch
        cursor = self._driver.cursor()
        try:
            if dispatch.before_cursor_execute:
                dispatch.before_cursor_execute(conn, cursor, sql, params, None, many)
            yield cursor
            if dispatch.after_cursor_execute:
                dispatch.after_cursor_execute(conn, cursor, sql, params, None, many)
        finally:
            cursor.close()

    # --- wrapped secrets -------------------------------------------------------------
    def get_secret(self, name: str) -> str | None:
        return self.conn.scalar(select(t.wrapped_secrets.c.wrapped).where(t.wrapped_secrets.c.name == name))

    def add_secret(self, name: str, wrapped: str, now: datetime) -> None:
        self.conn.execute(insert(t.wrapped_secrets).values(name=name, wrapped=wrapped, created_at=now))

    # --- idempotency -----------------------------------------------------------------
    def get_request(self, principal: str, request_id: str) -> tuple[bytes, str, list[tuple[int, str, str]]] | None:
        """A stored tokenize answer: fingerprint, the answer's JSON, its stored records
        (position, subject id, tokens JSON); None if there is none. One queued by an earlier
        unit of this transaction counts."""
        queued = self.queued.answer(principal, request_id)
        if queued is not None:
            return queued
        m = self._mark
        rows = self._fetch(f"SELECT fingerprint, response FROM tokenize_requests WHERE principal = {m} AND request_id = {m}",
                           (principal, request_id))
        if not rows:
            return None
        records = self._fetch(f"SELECT position, subject_id, tokens FROM request_records WHERE principal = {m} "
                              f"AND request_id = {m} ORDER BY position", (principal, request_id))
        return bytes(rows[0][0]), rows[0][1], [(int(i), s, t) for i, s, t in records]

    def save_request(self, principal: str, request_id: str, fingerprint: bytes, response: str, now: datetime,
                     records: Sequence[tuple[int, str, str]] = ()) -> None:
        """Store a tokenize answer for retries now: its JSON and its records (position, subject id, tokens JSON)."""
        self._add_requests([(principal, request_id, fingerprint, response, now)], [(principal, request_id, *r) for r in records])

    def _add_requests(self, requests: Sequence[tuple], records: Sequence[tuple]) -> None:
        self._bulk_insert("tokenize_requests", REQUEST_COLUMNS, requests, (4,))
        self._bulk_insert("request_records", RECORD_COLUMNS, records, ())

    def queue_tokenized(self, subjects: Sequence[tuple], keys: Sequence[tuple], values: Sequence[tuple],
                        request: tuple[str, str, bytes, str, datetime] | None,
                        records: Sequence[tuple[int, str, str]]) -> None:
        """Add a tokenize's subjects, keys and values (tuples in SUBJECT_, KEY_ and VALUE_COLUMNS
        order) and its answer for retries (principal, request id, fingerprint, answer JSON, time;
        records: position, subject id, tokens JSON; None keeps no answer). Written at commit with every other unit's
        (vault.storage.insert_queue); get_request and existing_values see them at once."""
        self.queued.add_tokenized(subjects, keys, values, request, records)

    def write_queued(self) -> None:
        """Write what queue_tokenized queued, parents first (Store.transaction does, before the access log)."""
        queued, self.queued = self.queued, InsertQueue()
        self.add_subjects(queued.subjects)
        self.add_keys(queued.keys)
        self.add_values(queued.values)
        self._add_requests(queued.requests, queued.records)
        holders.write_holders(self, queued.holders)  # after the subjects they name

    def record_holders(self, rows: Iterable[tuple[str, str, str]], at: datetime, new_subjects: bool = False) -> None:
        """Note that each (subject, domain, principal) was handed tokens of the subject at `at`: the
        issuance ledger (vault.storage.holders), written at commit with the other queued rows.
        `new_subjects`: the subjects are queued by this transaction (a plain insert, no check)."""
        self.queued.add_holders(rows, at, new_subjects)

    # --- subjects and keys -----------------------------------------------------------
    def current_keys(self, subject_ids: Sequence[str]) -> dict[str, KeyRow]:
        """The newest data key of each existing subject (absent subjects are left out)."""
        if not subject_ids:
            return {}
        c = t.data_keys.c
        newest = (
            select(c.subject_id, func.max(c.version).label("version"))
            .where(c.subject_id.in_(subject_ids))
            .group_by(c.subject_id)
            .subquery()
        )
        rows = self.conn.execute(
            select(c.subject_id, c.version, c.wrapped, c.encryptions).join(
                newest, and_(c.subject_id == newest.c.subject_id, c.version == newest.c.version)
            )
        )
        return {r.subject_id: KeyRow(r.subject_id, r.version, r.wrapped, r.encryptions) for r in rows}

    def add_subjects(self, rows: Sequence[tuple]) -> None:
        """Insert subjects given as tuples in SUBJECT_COLUMNS order."""
        self._bulk_insert("subjects", SUBJECT_COLUMNS, rows, (1,))

    def add_keys(self, rows: Sequence[tuple]) -> None:
        """Insert wrapped data keys given as tuples in KEY_COLUMNS order."""
        self._bulk_insert("data_keys", KEY_COLUMNS, rows, (5,))

    def count_encryptions(self, counts: Iterable[tuple[str, int, int]]) -> None:
        """Add n to the encryption count of each (subject, version)."""
        params = [(n, s, v) for s, v, n in counts]
        if params:
            m = self._mark
            self.execute_many(f"UPDATE data_keys SET encryptions = encryptions + {m} WHERE subject_id = {m} AND version = {m}", params)

    # --- values ----------------------------------------------------------------------
    def taken_tokens(self, field: str, tokens: Sequence[str]) -> set[str]:
        """Which of `tokens` are already reserved as format-preserving tokens of `field`."""
        c = t.reserved_tokens.c
        return set(self.conn.scalars(select(c.token).where(c.field == field, c.token.in_(tokens))))

    def reserve_tokens(self, rows: Sequence[tuple[str, str]]) -> None:
        """Reserve (field, token) pairs for good; a pair taken concurrently raises Conflict."""
        if rows:
            self.conn.execute(insert(t.reserved_tokens), [{"field": f, "token": tok} for f, tok in rows])

    def existing_values(self, keys: Sequence[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        """Which (token, field, subject_id) rows already exist (deterministic re-collection)."""
        if not keys:
            return set()
        # Search by token (indexed) and filter here: SQLite scans for row-value IN lists.
        tokens = sorted({k[0] for k in keys})
        if self.dialect == "postgresql":
            found = self._fetch(f"SELECT v.token, v.field, v.subject_id FROM {_TOKEN_PROBES}", [tokens])
        else:
            one_of, params = self.one_of(tokens)
            found = self._fetch(
                f"SELECT token, field, subject_id FROM field_values WHERE token {one_of} AND locator IS NULL", params)
        wanted = set(keys)
        return {row for row in ((r[0], r[1], r[2]) for r in found) if row in wanted} | self.queued.queued_values(keys)

    def add_values(self, rows: Sequence[tuple]) -> None:
        """Insert value rows given as tuples in VALUE_COLUMNS order."""
        self._bulk_insert("field_values", VALUE_COLUMNS, rows, (9, 10))

    def values_for_tokens(self, tokens: Sequence[str], access_purpose: str = "", domain: str | None = None,
                          located: Sequence[tuple[int, bytes]] = ()) -> list[ValueRow]:
        """Each value stored under one of `tokens` (issued in token `domain`, if given), with the
        wrapped key that proves it is live, its collection purpose and whether its subject opted
        out of `access_purpose`. A row of another domain is left out in the index probe itself,
        as if it did not exist.

        `located`: the (locator, check) each opaque token opens to in `domain`
        (vault.crypto.locators). A sequential token's row is found by its locator and kept only
        if its stored check matches (compared in constant time); every other row by its token.
        Both probes run for every call, whatever is asked and found.

        The join with data_keys is the point: a value whose key was shredded is not
        returned, whatever any cache holds. On PostgreSQL the key rows are share-locked,
        so a concurrent shred waits until this transaction (and its access log) commits.
        """
        if not tokens:
            return []
        m = self._mark
        locators = sorted({loc for loc, _ in located})
        if self.dialect == "postgresql":
            # One index probe per token, then one per key row: a subquery that locks rows is
            # never flattened either. (A plan made before the tables had statistics hash-joined
            # a scan of every data key, for a one-token read, and only when the token existed:
            # slow, and a timing oracle.)
            rows_from = (
                f"({_pg_probes('token', 'text', domain)} UNION ALL {_pg_probes('locator', 'bigint', domain)}) v "
                "CROSS JOIN LATERAL (SELECT k.wrapped "
                "FROM data_keys k WHERE k.subject_id = v.subject_id AND k.version = v.key_version FOR SHARE) k"
            )
            in_domain_params = [] if domain is None else [domain]
            params: list = [sorted(set(tokens)), *in_domain_params, locators, *in_domain_params]
        else:
            # One search of each index for its terms (SQLite's multi-index OR), no subquery to materialize.
            one_of, token_params = self.one_of(tokens)
            in_domain, in_domain_params = ("", []) if domain is None else (" AND v.domain = ?", [domain])
            by_locator, locator_params = self.one_of(locators) if locators else ("IN (NULL)", [])
            rows_from = (
                "field_values v JOIN data_keys k ON k.subject_id = v.subject_id AND k.version = v.key_version "
                f"WHERE ((v.token {one_of} AND v.locator IS NULL) OR v.locator {by_locator}){in_domain}"
            )
            params = [*token_params, *locator_params, *in_domain_params]
        sql = (
            "SELECT v.token, v.field, v.subject_id, v.key_version, v.ciphertext, k.wrapped, v.purpose, "
            f"EXISTS (SELECT 1 FROM consent_optouts c WHERE c.subject_id = v.subject_id AND c.purpose = {m}), "
            f"v.locator, v.token_check FROM {rows_from} ORDER BY v.id"
        )
        checks = _checks_by_locator(located)
        return [
            ValueRow(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], r[6], bool(r[7]))
            for r in self._fetch(sql, (access_purpose, *params))
            if r[8] is None or check_matches(checks.get(r[8], ()), r[9])
        ]

    def find_by_index(self, keys: Sequence[tuple[str, bytes]], access_purpose: str = "") -> list[IndexMatch]:
        """Rows whose (field, blind index) is one of `keys`, oldest first, with their collection
        purpose and whether their subject opted out of `access_purpose` (one query, whether
        or not anything matches, so a match the policy then hides costs no extra round trip)."""
        if not keys:
            return []
        by_field: dict[str, list[bytes]] = {}
        for field, index in keys:
            by_field.setdefault(field, []).append(index)
        # One `field = ? AND blind_index IN (...)` per field: an index search on both
        # databases, where a row-value IN list makes SQLite scan the table.
        m = self._mark
        clauses, params = [], [access_purpose]
        for field, indexes in sorted(by_field.items()):
            one_of, index_params = self.one_of(indexes)
            clauses.append(f"(v.field = {m} AND v.blind_index IS NOT NULL AND v.blind_index {one_of})")
            params += [field, *index_params]
        sql = (
            "SELECT v.field, v.blind_index, v.subject_id, v.token, v.purpose, "
            f"EXISTS (SELECT 1 FROM consent_optouts c WHERE c.subject_id = v.subject_id AND c.purpose = {m}) "
            f"FROM field_values v WHERE {' OR '.join(clauses)} ORDER BY v.id"
        )
        return [IndexMatch(r[0], bytes(r[1]), r[2], r[3], r[4], bool(r[5])) for r in self._fetch(sql, params)]

    # --- access log ------------------------------------------------------------------
    def log_access(self, rows: Sequence[tuple]) -> None:
        """Append access-log entries given as tuples in ACCESS_COLUMNS order.

        They are written (and chained) when the transaction commits, in the same
        transaction: if they cannot be written, nothing of the transaction is.
        """
        self.pending_access.extend(rows)

    def add_entries(self, rows: Sequence[tuple]) -> None:
        """Insert access-log entries (ENTRY_COLUMNS + CHAIN_COLUMNS order) and their rows in
        the per-subject index: one per distinct subject an entry names."""
        columns = ENTRY_COLUMNS + CHAIN_COLUMNS
        if self.dialect == "sqlite":
            rows = [_sqlite_times(row, (0,)) for row in rows]
        sql = f"INSERT INTO access_log ({', '.join(columns)}) VALUES "
        one = f"({self._marks(len(columns))})"
        ids: list[int] = []
        seq = len(columns) - 2
        if rows[0][seq] is not None and self.dialect == "postgresql":
            # One round trip for the entries and their index rows: the index rows join the
            # inserted entries' ids by seq (unique in the transaction's chain).
            for start in range(0, len(rows), _ENTRIES_PER_INSERT):
                chunk = rows[start:start + _ENTRIES_PER_INSERT]
                pairs = [(row[seq], subject) for row in chunk for subject in subjects_of(row)]
                self.execute(
                    f"WITH e AS ({sql}{', '.join([one] * len(chunk))} RETURNING id, seq) "
                    "INSERT INTO access_subjects (subject_id, entry_id) SELECT s.subject_id, e.id FROM e "
                    "JOIN unnest(%s::bigint[], %s::text[]) AS s(seq, subject_id) ON s.seq = e.seq",
                    [*(v for row in chunk for v in row), [p[0] for p in pairs], [p[1] for p in pairs]])
            return
        if rows[0][seq] is not None:
            # Chained: one statement a chunk. RETURNING's row order is not promised, so each
            # id comes back with its seq, unique in the transaction's chain.
            for start in range(0, len(rows), _ENTRIES_PER_INSERT):
                chunk = rows[start:start + _ENTRIES_PER_INSERT]
                got = dict((s, i) for i, s in self._fetch(sql + ", ".join([one] * len(chunk)) + " RETURNING id, seq",
                                                         [v for row in chunk for v in row]))
                ids += [got[row[seq]] for row in chunk]
        else:  # unchained (tests, tools): nothing tells the rows apart, so one statement each
            ids = [self._fetch(sql + one + " RETURNING id", row)[0][0] for row in rows]
        index = [(subject, entry_id) for row, entry_id in zip(rows, ids) for subject in subjects_of(row)]
        # The statement runs even when no entry names a subject: an unknown token's entry names
        # none and a refused row's names one, and the two must cost the same statements
        # (tests/e2e/test_oracle_timing.py). The NULL row is skipped by OR IGNORE (the key is NOT NULL).
        if self.dialect == "sqlite":
            self.execute_many("INSERT OR IGNORE INTO access_subjects (subject_id, entry_id) VALUES (?, ?)",
                              index or [(None, None)])
        else:  # unchained rows on PostgreSQL (tests, tools)
            self._bulk_insert("access_subjects", ("subject_id", "entry_id"), index, ())

    def save_chain_head(self, head: ChainHead, started_at: datetime) -> None:
        """Record where the chain now ends (one statement per transaction, not per row)."""
        m = self._mark
        if head.new:
            at = _sqlite_time(started_at) if self.dialect == "sqlite" else started_at
            self.execute(f"INSERT INTO audit_chains (chain_id, started_at, seq, mac) VALUES ({m}, {m}, {m}, {m})",
                         (head.chain_id, at, head.seq, head.mac))
        else:
            self.execute(f"UPDATE audit_chains SET seq = {m}, mac = {m} WHERE chain_id = {m}", (head.seq, head.mac, head.chain_id))

    def _bulk_insert(self, table: str, columns: tuple[str, ...], rows: Sequence[tuple], time_columns: tuple[int, ...]) -> None:
        # The two hottest inserts bypass Core's per-row parameter processing: COPY on
        # PostgreSQL, a plain executemany on SQLite (timestamps in SQLAlchemy's own format).
        if not rows:
            return
        names = ", ".join(columns)
        if self.dialect == "postgresql":
            statement = f"COPY {table} ({names}) FROM STDIN"
            with self._cursor(statement, rows, many=True) as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        if time_columns:
            rows = [_sqlite_times(row, time_columns) for row in rows]
        marks = ", ".join("?" * len(columns))
        self.execute_many(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)



_ENTRIES_PER_INSERT = 500  # 13 parameters an entry: well under either database's limit

# PostgreSQL: the field_values rows (as `v`) of the tokens bound as one array, found by one
# index probe per token (the token index holds the rows without a locator: deterministic,
# format-preserving and earlier random tokens, 0013). A subquery with OFFSET is never flattened into a join, so no plan,
# however wrong its row estimates (tables not yet analyzed), can scan the table instead.
_TOKEN_PROBES = (
    "unnest(%s::text[]) AS q(token) CROSS JOIN LATERAL (SELECT v.id, v.token, v.field, v.subject_id, "
    "v.key_version, v.ciphertext, v.purpose FROM field_values v WHERE v.token = q.token AND v.locator IS NULL OFFSET 0) v"
)

# What the reads of values take of each row; the locator probes (0013) of one token domain
# beside the token probes: rows with a locator by it, the others (partial index) by token.
_PROBED = "id, token, field, subject_id, key_version, ciphertext, purpose, locator, token_check"


def _pg_probes(column: str, kind: str, domain: str | None) -> str:
    """PostgreSQL: the value rows of the `column` values bound as one array, one index probe
    each (as _TOKEN_PROBES), of one domain if given; a token probe keeps rows without a locator."""
    return _pg_probes_sql(column, kind, domain is not None)


@functools.cache
def _pg_probes_sql(column: str, kind: str, in_domain: bool) -> str:
    """_pg_probes' statement, made once per shape: every detokenize sends one of four."""
    where = f"v.{column} = q.{column}" + (" AND v.locator IS NULL" if column == "token" else "")
    where += " AND v.domain = %s" if in_domain else ""
    columns = ", ".join(f"v.{name}" for name in _PROBED.split(", "))
    return (f"SELECT q2.* FROM unnest(%s::{kind}[]) AS q({column}) CROSS JOIN LATERAL "
            f"(SELECT {columns} FROM field_values v WHERE {where} OFFSET 0) q2")


def _checks_by_locator(located: Sequence[tuple[int, bytes]]) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for locator, check in located:
        out.setdefault(locator, []).append(check)
    return out


def check_matches(wanted: Sequence[bytes], stored: bytes | None) -> bool:
    """Whether a row's stored check is one a presented token opened to, in constant time."""
    if stored is None:
        return False
    found = False
    for check in wanted:
        found |= hmac.compare_digest(check, bytes(stored))
    return found


def _sqlite_times(row: tuple, positions: tuple[int, ...]) -> tuple:
    out = list(row)
    for i in positions:
        out[i] = _sqlite_time(out[i])
    return tuple(out)


@functools.lru_cache(maxsize=4096)  # a batch shares a few timestamps: format each once
def _sqlite_time(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DateTime storage format (UTC, no offset), so Core reads it back.
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")
