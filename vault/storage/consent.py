"""Queries of consent opt-outs (migration 0005), outside the read paths.

Detokenize and lookup read a value's opt-out in the same query as the value (store.py);
these serve the consent RPCs and checks made inside a transaction the caller already
holds, so a check and the access-log rows it leads to commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select

from vault.storage.store import Tx
from vault.storage.tables import consent_optouts


def opted_out(tx: Tx, subject_ids: Sequence[str], purpose: str) -> set[str]:
    """Which of `subject_ids` opted out of `purpose`."""
    if not subject_ids:
        return set()
    c = consent_optouts.c
    stmt = select(c.subject_id).where(c.purpose == purpose, c.subject_id.in_(sorted(set(subject_ids))))
    return set(tx.conn.scalars(stmt))


def opt_outs_of(tx: Tx, subject_id: str) -> list[str]:
    """The purposes `subject_id` opted out of, sorted."""
    c = consent_optouts.c
    return sorted(tx.conn.scalars(select(c.purpose).where(c.subject_id == subject_id)))


def set_opt_out(tx: Tx, subject_id: str, purpose: str, opted_out_now: bool, principal: str, now: datetime) -> bool:
    """Record an opt-out (or remove it); True if anything changed."""
    c = consent_optouts.c
    present = tx.conn.scalar(select(c.subject_id).where(c.subject_id == subject_id, c.purpose == purpose))
    if opted_out_now and present is None:
        tx.conn.execute(insert(consent_optouts).values(subject_id=subject_id, purpose=purpose, set_by=principal, set_at=now))
        return True
    if not opted_out_now and present is not None:
        tx.conn.execute(delete(consent_optouts).where(c.subject_id == subject_id, c.purpose == purpose))
        return True
    return False


def subject_exists(tx: Tx, subject_id: str) -> bool:
    return bool(tx.fetch(f"SELECT 1 FROM subjects WHERE id = {tx.marks(1)}", (subject_id,)))
