"""Queries of the token issuance ledger (migration 0011, table token_holders).

One row per (subject, domain, principal) handed tokens of the subject: a tokenize answer, a
lookup match, a translation. It holds who and when, never a token or a value. Rows are
written at commit, sorted, with the transaction's other queued rows (Tx.record_holders), so
two transactions touching the same rows take their locks in the same order and never
deadlock; a row is written only if its subject still exists, so a ledger row never outlives
a concurrent shred (on PostgreSQL the subject row is key-share locked, so a shred waits for
this transaction, then deletes the row with the subject).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from sqlalchemy import select

from vault.storage import tables as t

if TYPE_CHECKING:
    from vault.storage.store import Tx

# A holder handed the same subject's tokens again within this long leaves its row as it is:
# last_issued_at is to within this, and a burst of lookups of one person writes once.
LAST_ISSUED_STEP = timedelta(minutes=1)

_COLUMN_NAMES = ("subject_id", "domain", "principal", "first_issued_at", "last_issued_at")
_COLUMNS = ", ".join(_COLUMN_NAMES)
_ON_CONFLICT = (
    "ON CONFLICT (subject_id, domain, principal) DO UPDATE SET last_issued_at = excluded.last_issued_at "
    "WHERE token_holders.last_issued_at < {m}"
)


@dataclass(frozen=True, slots=True)
class Holder:
    """A principal that was handed tokens of a subject, in its token domain at the time."""

    principal: str
    domain: str
    first_issued_at: datetime
    last_issued_at: datetime


def write_holders(tx: "Tx", rows: dict[tuple[str, str, str], tuple[datetime, bool]]) -> None:
    """Insert or refresh (subject, domain, principal) -> (issued at, subject new in this transaction).

    The rows of subjects this transaction creates cannot exist yet, nor their subject vanish:
    they are bulk-inserted (COPY on PostgreSQL), without the check and lock the others take."""
    fresh = sorted((k[0], k[1], k[2], at, at) for k, (at, new) in rows.items() if new)
    tx.insert_rows("token_holders", _COLUMN_NAMES, fresh, (3, 4))
    _upsert(tx, sorted((k, at) for k, (at, new) in rows.items() if not new))


def _upsert(tx: "Tx", ordered: list[tuple[tuple[str, str, str], datetime]]) -> None:
    """Insert or refresh rows of subjects that exist already, in key order."""
    if not ordered:
        return
    if tx.dialect == "postgresql":
        at = [when for _, when in ordered]
        tx.execute(
            f"INSERT INTO token_holders ({_COLUMNS}) "
            "SELECT s.id, q.domain, q.principal, q.at, q.at FROM unnest(%s::text[], %s::text[], %s::text[], "
            "%s::timestamptz[]) WITH ORDINALITY AS q(subject_id, domain, principal, at, n) "
            "JOIN subjects s ON s.id = q.subject_id ORDER BY q.n FOR KEY SHARE OF s "
            + _ON_CONFLICT.format(m="excluded.last_issued_at - %s::interval"),
            ([k[0] for k, _ in ordered], [k[1] for k, _ in ordered], [k[2] for k, _ in ordered], at,
             f"{int(LAST_ISSUED_STEP.total_seconds())} seconds"),
        )
        return
    # SQLite runs one writer at a time: the subject cannot vanish between the check and the insert.
    params = []
    for (subject_id, domain, principal), when in ordered:
        stamp, threshold = tx.db_time(when), tx.db_time(when - LAST_ISSUED_STEP)
        params.append((subject_id, domain, principal, stamp, stamp, subject_id, threshold))
    tx.execute_many(
        f"INSERT INTO token_holders ({_COLUMNS}) SELECT ?, ?, ?, ?, ? WHERE EXISTS "
        "(SELECT 1 FROM subjects WHERE id = ?) " + _ON_CONFLICT.format(m="?"),
        params,
    )


def holders_of(tx: "Tx", subject_id: str) -> list[Holder]:
    """Every holder of the subject's tokens, by first issue."""
    c = t.token_holders.c
    stmt = (select(c.principal, c.domain, c.first_issued_at, c.last_issued_at).where(c.subject_id == subject_id)
            .order_by(c.first_issued_at, c.principal, c.domain))
    return [Holder(p, d, _utc(first), _utc(last)) for p, d, first, last in tx.conn.execute(stmt)]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)  # SQLite keeps naive UTC


def forget_holders(tx: "Tx", subject_ids: Sequence[str]) -> None:
    """Delete the ledger rows of shredded subjects."""
    if subject_ids:
        one_of, params = tx.one_of(subject_ids)
        tx.execute(f"DELETE FROM token_holders WHERE subject_id {one_of}", params)
