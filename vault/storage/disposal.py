"""Queries of retention disposal and DEK rotation. Not on a hot path: plain Core."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, insert, or_, select, update

from vault.storage import tables as t
from vault.storage.jobs import job_lock, lock_key
from vault.storage.store import Store, Tx

# The disposal job's lock name; as pg_try_advisory_lock's key, a 64-bit integer.
DISPOSAL_LOCK = b"PDVDISPO"
DISPOSAL_LOCK_KEY = lock_key(DISPOSAL_LOCK)


@dataclass(frozen=True, slots=True)
class ExpiredValue:
    id: int
    subject_id: str
    field: str
    token: str
    key_version: int
    ciphertext: bytes
    purpose: str
    expires_at: datetime


Cursor = tuple[datetime, int]  # (expires_at, id) of the last expired row seen


def count_expired(tx: Tx, now: datetime) -> int:
    c = t.field_values.c
    return tx.conn.scalar(select(func.count()).where(c.expires_at <= now)) or 0


def expired_page(tx: Tx, now: datetime, after: Cursor | None, limit: int) -> list[tuple[str, datetime, int]]:
    """(subject_id, expires_at, id) of expired values after `after`, in (expires_at, id) order:
    keyset pagination on the expiry index, so a page costs the same however far in it is."""
    c = t.field_values.c
    stmt = select(c.subject_id, c.expires_at, c.id).where(c.expires_at <= now)
    if after is not None:
        stmt = stmt.where(or_(c.expires_at > after[0], and_(c.expires_at == after[0], c.id > after[1])))
    return [tuple(r) for r in tx.conn.execute(stmt.order_by(c.expires_at, c.id).limit(limit))]


def expired_values(tx: Tx, subject_ids: Sequence[str], now: datetime) -> list[ExpiredValue]:
    c = t.field_values.c
    rows = tx.conn.execute(
        select(c.id, c.subject_id, c.field, c.token, c.key_version, c.ciphertext, c.purpose, c.expires_at)
        .where(c.subject_id.in_(subject_ids), c.expires_at <= now).order_by(c.id)
    )
    return [ExpiredValue(*r) for r in rows]


def subjects_with_live_values(tx: Tx, subject_ids: Sequence[str], now: datetime) -> set[str]:
    c = t.field_values.c
    return set(tx.conn.scalars(select(c.subject_id).where(c.subject_id.in_(subject_ids), c.expires_at > now).distinct()))


def wrapped_keys(tx: Tx, subject_ids: Sequence[str]) -> dict[tuple[str, int], str]:
    """(subject id, version) → wrapped DEK, for every key of these subjects."""
    c = t.data_keys.c
    rows = tx.conn.execute(select(c.subject_id, c.version, c.wrapped).where(c.subject_id.in_(subject_ids)))
    return {(s, v): w for s, v, w in rows}


def add_deidentified(tx: Tx, rows: Sequence[dict]) -> None:
    if rows:
        tx.conn.execute(insert(t.deidentified_values), list(rows))


# --- DEK rotation ------------------------------------------------------------------------

def subject_values(tx: Tx, subject_id: str) -> list[tuple[int, str, str, int, bytes]]:
    """(id, field, token, key_version, ciphertext) of every value of the subject."""
    c = t.field_values.c
    rows = tx.conn.execute(
        select(c.id, c.field, c.token, c.key_version, c.ciphertext).where(c.subject_id == subject_id).order_by(c.id)
    )
    return [tuple(r) for r in rows]


def reseal_values(tx: Tx, subject_id: str, rows: Sequence[tuple[int, int, int, bytes]]) -> int:
    """Set (key_version, ciphertext) of each (id, old version, new version, ciphertext) row whose
    version is still the old one; returns how many rows changed."""
    c = t.field_values.c
    changed = 0
    for row_id, old, new, sealed in rows:
        changed += tx.conn.execute(
            update(t.field_values).where(c.id == row_id, c.subject_id == subject_id, c.key_version == old)
            .values(key_version=new, ciphertext=sealed)
        ).rowcount
    return changed


def delete_keys_below(tx: Tx, subject_id: str, version: int) -> int:
    c = t.data_keys.c
    return tx.conn.execute(delete(t.data_keys).where(c.subject_id == subject_id, c.version < version)).rowcount


# --- one disposal job at a time ----------------------------------------------------------

def old_answers(tx: Tx, before: datetime, limit: int) -> list[tuple[str, str]]:
    """(principal, request id) of up to `limit` stored tokenize answers created before `before`."""
    c = t.tokenize_requests.c
    return [tuple(r) for r in tx.conn.execute(
        select(c.principal, c.request_id).where(c.created_at < before).order_by(c.created_at).limit(limit)
    )]


def count_old_answers(tx: Tx, before: datetime) -> int:
    c = t.tokenize_requests.c
    return int(tx.conn.scalar(select(func.count()).select_from(t.tokenize_requests).where(c.created_at < before)))


def delete_answers(tx: Tx, keys: Sequence[tuple[str, str]]) -> None:
    """Delete stored tokenize answers (and their records) by (principal, request id)."""
    if not keys:
        return
    for table in (t.request_records, t.tokenize_requests):
        c = table.c
        tx.conn.execute(delete(table).where(or_(*(and_(c.principal == p, c.request_id == r) for p, r in keys))))


def disposal_lock(store: Store) -> AbstractContextManager[bool]:
    """True if this process may run the disposal job now, False if another replica is (jobs.job_lock)."""
    return job_lock(store, DISPOSAL_LOCK)
