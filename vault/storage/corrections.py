"""Queries of value correction (migration 0008): the values of one field of one subject,
rewriting them in place, and the correction history.

History rows cascade from the value they describe (value_id), so the shred and disposal
paths, which delete values, need nothing of their own here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update

from vault.storage import tables as t
from vault.storage.store import Tx


@dataclass(frozen=True, slots=True)
class StoredValue:
    """One stored value of the field being corrected, with the wrapped key it is sealed under."""

    id: int
    token: str
    key_version: int
    ciphertext: bytes
    wrapped: str
    purpose: str
    domain: str = "city"  # the token domain its token was issued in (tokens and indexes are keyed by it)


@dataclass(frozen=True, slots=True)
class CorrectionRow:
    """One row of a subject's correction history."""

    value_id: int
    subject_id: str
    field: str
    purpose: str
    token: str
    token_changed: bool
    old_fingerprint: bytes
    corrected_at: datetime
    corrected_by: str
    reason: str
    case_id: str | None
    request_id: str
    request_fingerprint: bytes


def values_of(tx: Tx, subject_id: str, field: str, lock: bool = False) -> list[StoredValue]:
    """The subject's values of `field`, oldest first, joined with their key rows (a value whose
    key is gone is not returned). `lock` takes row locks on PostgreSQL, so a concurrent
    correction or key rotation waits, then sees this transaction's result."""
    v, k = t.field_values.c, t.data_keys.c
    stmt = (
        select(v.id, v.token, v.key_version, v.ciphertext, k.wrapped, v.purpose, v.domain)
        .join(t.data_keys, (k.subject_id == v.subject_id) & (k.version == v.key_version))
        .where(v.subject_id == subject_id, v.field == field)
        .order_by(v.id)
    )
    if lock and tx.dialect == "postgresql":
        stmt = stmt.with_for_update(of=t.field_values)
    return [StoredValue(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6]) for r in tx.conn.execute(stmt)]


def rewrite_values(tx: Tx, rows: Sequence[tuple[int, str, int, bytes, bytes | None]]) -> None:
    """Store (value id, token, key version, ciphertext, blind index) over each value, in place:
    the row keeps its id, purpose, source, notice and expiry."""
    c = t.field_values.c
    for value_id, token, key_version, ciphertext, index in rows:
        tx.conn.execute(update(t.field_values).where(c.id == value_id)
                        .values(token=token, key_version=key_version, ciphertext=ciphertext, blind_index=index))


def drop_values(tx: Tx, value_ids: Sequence[int]) -> None:
    """Delete values a deterministic correction merged into an older row of the same token."""
    if value_ids:
        tx.conn.execute(delete(t.field_values).where(t.field_values.c.id.in_(value_ids)))


def move_history(tx: Tx, from_ids: Sequence[int], to_id: int) -> None:
    """Point the history of merged values at the value they were merged into."""
    if from_ids:
        c = t.value_corrections.c
        tx.conn.execute(update(t.value_corrections).where(c.value_id.in_(from_ids)).values(value_id=to_id))


def add_history(tx: Tx, rows: Sequence[CorrectionRow]) -> None:
    if rows:
        tx.conn.execute(insert(t.value_corrections), [_as_dict(r) for r in rows])


def history_of_request(tx: Tx, principal: str, request_id: str) -> list[CorrectionRow]:
    """The history rows an earlier CorrectValue of `principal` with `request_id` wrote, in order."""
    c = t.value_corrections.c
    return _rows(tx, select(t.value_corrections).where(c.corrected_by == principal, c.request_id == request_id))


def history_of_subject(tx: Tx, subject_id: str, fields: Sequence[str] | None = None) -> list[CorrectionRow]:
    """A subject's correction history, oldest first (only `fields`, if given)."""
    c = t.value_corrections.c
    stmt = select(t.value_corrections).where(c.subject_id == subject_id)
    if fields is not None:
        stmt = stmt.where(c.field.in_(fields))
    return _rows(tx, stmt)


def _rows(tx: Tx, stmt) -> list[CorrectionRow]:  # type: ignore[no-untyped-def]
    c = t.value_corrections.c
    return [
        CorrectionRow(r.value_id, r.subject_id, r.field, r.purpose, r.token, bool(r.token_changed),
                      bytes(r.old_fingerprint), r.corrected_at, r.corrected_by, r.reason, r.case_id, r.request_id,
                      bytes(r.request_fingerprint))
        for r in tx.conn.execute(stmt.order_by(c.id))
    ]


def _as_dict(row: CorrectionRow) -> dict:
    return {name: getattr(row, name) for name in CorrectionRow.__slots__}  # type: ignore[attr-defined]
