"""Queries of events to token holders (migration 0014: event_outbox, event_cursors).

`record` writes, in the caller's transaction, one outbox row per (subject, holder principal)
of the token issuance ledger that holds at least one affected token: the tokens as
field_values stores them in the holder's own domain, read before the change destroys them.
No value is read.

Ids rise in commit order, across processes and replicas: each is max(last id + 1, the
time in microseconds), assigned under a lock held until the commit (PostgreSQL: a
transaction-level advisory lock; SQLite: its single writer). A subscriber that has read up
to an id can never later see a smaller one commit; and after a database is restored from an
older copy, new ids still follow every id handed out before (the clock moved on).

An acknowledged event is deleted (`ack`), an unacknowledged one when it expires (`purge`):
a shredded subject's tokens stay here only until each holder has handled its event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from vault.storage.store import Tx

# pg_advisory_xact_lock key of outbox writers (other advisory keys of PDV are small integers).
_OUTBOX_LOCK = 0x7064765F65766E74  # "pdv_evnt"
_COLUMNS = ("id", "principal", "subject_id", "kind", "ref", "at", "fields", "purpose", "tokens")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    subject_id: str
    kind: str
    ref: str
    at: datetime
    fields: tuple[str, ...]
    purpose: str
    tokens: tuple[tuple[str, str, str], ...]  # (field, token, previous token or "")


@dataclass(frozen=True, slots=True)
class Change:
    """One change to some subjects, as its events describe it."""

    kind: str
    at: datetime
    refs: Mapping[str, str]  # subject id -> receipt id / correction id / request id
    fields: Sequence[str] | None = None  # only these fields' tokens (None: every field)
    expired_by: datetime | None = None  # only values expired by then (disposal)
    purpose: str = ""
    value_ids: Sequence[int] | None = None  # only these values (a replayed field shred or disposal)
    # Corrections: (subject, domain, field, token, previous token) in place of reading field_values.
    tokens: Sequence[tuple[str, str, str, str, str]] | None = None


def record(tx: Tx, change: Change) -> int:
    """Write the change's events (see the module docstring); the number written. A change
    already recorded for a holder (same subject, kind and reference) is not written twice."""
    subjects = sorted(change.refs)
    if not subjects:
        return 0
    one_of, params = tx.one_of(subjects)
    holders = tx.fetch(f"SELECT subject_id, domain, principal FROM token_holders WHERE subject_id {one_of}", params)
    if not holders:
        return 0
    tokens = _tokens(tx, change, subjects)
    per_holder: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for subject_id, domain, principal in sorted(holders):
        held = tokens.get((subject_id, domain), [])
        if held:
            per_holder.setdefault((subject_id, principal), []).extend(held)
    if not per_holder:
        return 0
    if tx.dialect == "postgresql":
        tx.execute("SELECT pg_advisory_xact_lock(%s)", (_OUTBOX_LOCK,))
    (last,) = tx.fetch("SELECT COALESCE(MAX(id), 0) FROM event_outbox")[0]
    base = max(int(last) + 1, int(change.at.timestamp() * 1_000_000))
    fields = ",".join(sorted(change.fields or ()))
    rows = [
        (base + n, principal, subject_id, change.kind, change.refs[subject_id], tx.db_time(change.at), fields,
         change.purpose, json.dumps(sorted(set(held)), separators=(",", ":")))
        for n, ((subject_id, principal), held) in enumerate(sorted(per_holder.items()))
    ]
    tx.execute_many(
        f"INSERT INTO event_outbox ({', '.join(_COLUMNS)}) VALUES ({tx.marks(len(_COLUMNS))}) "
        "ON CONFLICT (principal, subject_id, kind, ref) DO NOTHING", rows)
    return len(rows)


def _tokens(tx: Tx, change: Change, subjects: list[str]) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    """(subject, domain) -> [(field, token, previous token)] the change touches."""
    out: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    if change.tokens is not None:
        for subject_id, domain, field, token, previous in change.tokens:
            out.setdefault((subject_id, domain), []).append((field, token, previous))
        return out
    one_of, params = tx.one_of(subjects)
    sql = f"SELECT subject_id, domain, field, token FROM field_values WHERE subject_id {one_of}"
    if change.fields is not None:
        in_fields, more = tx.one_of(list(change.fields))
        sql, params = sql + f" AND field {in_fields}", params + more
    if change.expired_by is not None:
        sql, params = sql + f" AND expires_at <= {tx.marks(1)}", params + [tx.db_time(change.expired_by)]
    if change.value_ids is not None:
        in_ids, more = tx.one_of(list(change.value_ids))
        sql, params = sql + f" AND id {in_ids}", params + more
    for subject_id, domain, field, token in tx.fetch(sql, params):
        out.setdefault((subject_id, domain), []).append((field, token, ""))
    return out


def events_after(tx: Tx, principal: str, cursor: int, limit: int) -> list[StoredEvent]:
    """The principal's events after `cursor`, oldest first, at most `limit`."""
    m = tx.marks(1)
    rows = tx.fetch(
        f"SELECT id, subject_id, kind, ref, at, fields, purpose, tokens FROM event_outbox "
        f"WHERE principal = {m} AND id > {m} ORDER BY id LIMIT {int(limit)}", (principal, cursor))
    return [StoredEvent(int(i), s, k, r, _utc(at), tuple(f for f in fields.split(",") if f), p,
                        tuple(tuple(t) for t in json.loads(tokens)))
            for i, s, k, r, at, fields, p, tokens in rows]


def cursor_of(tx: Tx, principal: str) -> tuple[int, int]:
    """(last acknowledged id, highest purged id) of the principal; (0, 0) if it has neither."""
    rows = tx.fetch(f"SELECT acked, purged_through FROM event_cursors WHERE principal = {tx.marks(1)}", (principal,))
    return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)


def last_event_id(tx: Tx, principal: str) -> int:
    m = tx.marks(1)
    ((last,),) = tx.fetch(f"SELECT COALESCE(MAX(id), 0) FROM event_outbox WHERE principal = {m}", (principal,))
    return int(last)


def ack(tx: Tx, principal: str, cursor: int) -> int:
    """Move the principal's acknowledged cursor up to `cursor` (never down) and delete its
    events up to there: a token stays in the outbox only until its holder has handled the
    event (or the event expires). The cursor now stored."""
    m = tx.marks(1)
    tx.execute(
        f"INSERT INTO event_cursors (principal, acked, purged_through) VALUES ({m}, {m}, 0) "
        "ON CONFLICT (principal) DO UPDATE SET acked = excluded.acked WHERE event_cursors.acked < excluded.acked",
        (principal, cursor))
    acked = cursor_of(tx, principal)[0]
    tx.execute(f"DELETE FROM event_outbox WHERE principal = {m} AND id <= {m}", (principal, acked))
    return acked


def purge(tx: Tx, before: datetime) -> int:
    """Delete events committed before `before`, first raising each holder's purge horizon to
    the highest id it loses; the number deleted."""
    m = tx.marks(1)
    cutoff = tx.db_time(before)
    lost = tx.fetch(f"SELECT principal, MAX(id) FROM event_outbox WHERE at < {m} GROUP BY principal", (cutoff,))
    if not lost:
        return 0
    tx.execute_many(
        f"INSERT INTO event_cursors (principal, acked, purged_through) VALUES ({m}, 0, {m}) "
        "ON CONFLICT (principal) DO UPDATE SET purged_through = excluded.purged_through "
        "WHERE event_cursors.purged_through < excluded.purged_through",
        [(p, int(i)) for p, i in lost])
    return tx.execute(f"DELETE FROM event_outbox WHERE at < {m}", (cutoff,))


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite, read at the driver: SQLAlchemy's text format
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
