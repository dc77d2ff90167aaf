"""Queries of the subject access report: everything held about one subject, read by the
indexes on subject_id (field_values, legal_holds, tombstones, value_corrections, the
consent primary key), never by a scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select

from vault.storage import tables as t
from vault.storage.store import Tx


@dataclass(frozen=True, slots=True)
class HeldRow:
    """One stored value of the subject, with the wrapped key that proves it is live."""

    id: int
    field: str
    token: str
    key_version: int
    ciphertext: bytes
    wrapped: str
    purpose: str
    source: str
    notice_id: str | None
    notice_given: bool | None
    collected_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class HoldRow:
    case_id: str
    reason: str
    placed_at: datetime
    placed_by: str
    released_at: datetime | None


@dataclass(frozen=True, slots=True)
class OptOutRow:
    purpose: str
    set_at: datetime


@dataclass(frozen=True, slots=True)
class TombstoneRow:
    shredded_at: datetime
    fields: str | None  # comma-separated; None: the whole subject
    receipt: str
    signature: str


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def subject_known(tx: Tx, subject_id: str) -> bool:
    """Whether the subject exists or existed (a whole-subject shred leaves its tombstones)."""
    m = tx.marks(1)
    return bool(tx.fetch(f"SELECT 1 FROM subjects WHERE id = {m}", (subject_id,))
                or tx.fetch(f"SELECT 1 FROM tombstones WHERE subject_id = {m}", (subject_id,)))


def held_values(tx: Tx, subject_id: str) -> list[HeldRow]:
    """The subject's stored values, oldest first; a value whose key is gone is not one."""
    v, k = t.field_values.c, t.data_keys.c
    stmt = (
        select(v.id, v.field, v.token, v.key_version, v.ciphertext, k.wrapped, v.purpose, v.source, v.notice_id,
               v.notice_given, v.collected_at, v.expires_at)
        .join(t.data_keys, (k.subject_id == v.subject_id) & (k.version == v.key_version))
        .where(v.subject_id == subject_id)
        .order_by(v.id)
    )
    return [HeldRow(r.id, r.field, r.token, r.key_version, bytes(r.ciphertext), r.wrapped, r.purpose, r.source,
                    r.notice_id, None if r.notice_given is None else bool(r.notice_given), _utc(r.collected_at),
                    _utc(r.expires_at))
            for r in tx.conn.execute(stmt)]


def holds_of(tx: Tx, subject_id: str) -> list[HoldRow]:
    """Every legal hold on the subject, current and released, oldest first."""
    c = t.legal_holds.c
    stmt = (select(c.case_id, c.reason, c.placed_at, c.placed_by, c.released_at)
            .where(c.subject_id == subject_id).order_by(c.id))
    return [HoldRow(r.case_id, r.reason, _utc(r.placed_at), r.placed_by, _utc(r.released_at))
            for r in tx.conn.execute(stmt)]


def opt_outs_of(tx: Tx, subject_id: str) -> list[OptOutRow]:
    """The purposes the subject opted out of, with when, sorted by purpose."""
    c = t.consent_optouts.c
    stmt = select(c.purpose, c.set_at).where(c.subject_id == subject_id).order_by(c.purpose)
    return [OptOutRow(r.purpose, _utc(r.set_at)) for r in tx.conn.execute(stmt)]


def tombstones_of(tx: Tx, subject_id: str) -> list[TombstoneRow]:
    """Every shred and disposal of the subject's data, oldest first."""
    c = t.tombstones.c
    stmt = (select(c.shredded_at, c.fields, c.receipt, c.signature)
            .where(c.subject_id == subject_id).order_by(c.shredded_at, c.id))
    return [TombstoneRow(_utc(r.shredded_at), r.fields, r.receipt, r.signature) for r in tx.conn.execute(stmt)]
