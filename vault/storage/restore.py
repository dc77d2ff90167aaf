"""Queries of a restore: which tombstones the database has, and what a ledger entry would destroy again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from sqlalchemy import delete, select

from vault.storage import tables as t
from vault.storage.disposal import ExpiredValue
from vault.storage.store import Tx

TombstoneKey = tuple[str, str | None, datetime]  # (subject id, fields joined by commas or None, shredded at, UTC)


def utc(at: datetime) -> datetime:
    """`at` as an aware UTC time (SQLite hands back naive UTC)."""
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def tombstone_keys(tx: Tx) -> dict[TombstoneKey, int]:
    """Every tombstone's (subject, fields, time) → its row id: what the ledger is compared with."""
    c = t.tombstones.c
    return {(s, f, utc(at)): i for i, s, f, at in tx.conn.execute(select(c.id, c.subject_id, c.fields, c.shredded_at))}


def tombstone_receipts(tx: Tx, ids: Sequence[int]) -> list[tuple[str, str]]:
    """(receipt, signature) of the tombstones `ids`, in id order."""
    c = t.tombstones.c
    return [tuple(r) for r in tx.conn.execute(select(c.receipt, c.signature).where(c.id.in_(ids)).order_by(c.id))]


def values_destroyed_by(tx: Tx, subject_id: str, fields: Sequence[str] | None, collected_by: datetime,
                        expired_by: datetime | None) -> list[ExpiredValue]:
    """The subject's values a shred at `collected_by` destroyed (of `fields`, None for all; for a
    disposal, only those expired by `expired_by`): a value collected after it was not there."""
    c = t.field_values.c
    stmt = (select(c.id, c.subject_id, c.field, c.token, c.key_version, c.ciphertext, c.purpose, c.expires_at)
            .where(c.subject_id == subject_id, c.collected_at <= collected_by).order_by(c.id))
    if fields is not None:
        stmt = stmt.where(c.field.in_(fields))
    if expired_by is not None:
        stmt = stmt.where(c.expires_at <= expired_by)
    return [ExpiredValue(*r) for r in tx.conn.execute(stmt)]


def destroy_values(tx: Tx, subject_id: str, ids: Sequence[int]) -> set[int]:
    """Delete these values of the subject; the ids of those that were still there."""
    c = t.field_values.c
    there = set(tx.conn.scalars(select(c.id).where(c.subject_id == subject_id, c.id.in_(ids))))
    if there:
        tx.conn.execute(delete(t.field_values).where(c.subject_id == subject_id, c.id.in_(sorted(there))))
    return there
