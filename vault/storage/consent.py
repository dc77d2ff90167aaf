"""Queries of the policy checks: collection purposes and consent opt-outs (migration 0005).

Kept apart from store.py so the policy work touches none of its hot paths; each function
runs inside a transaction the caller already holds, so a check and the access-log rows
it leads to commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select

from vault.storage.store import Tx
from vault.storage.tables import consent_optouts

# (token, field, subject id) -> (collection purpose, opted out of the access purpose)
ReadContext = dict[tuple[str, str, str], tuple[str, bool]]


def read_context(tx: Tx, tokens: Sequence[str], access_purpose: str) -> ReadContext:
    """For every value stored under `tokens`: why it was collected, and whether its subject
    opted out of `access_purpose`. One indexed query (field_values.token, the consent key)."""
    if not tokens:
        return {}
    sql = (
        "SELECT v.token, v.field, v.subject_id, v.purpose, "
        f"EXISTS (SELECT 1 FROM consent_optouts c WHERE c.subject_id = v.subject_id AND c.purpose = {tx.marks(1)}) "
        f"FROM field_values v WHERE v.token IN ({tx.marks(len(tokens))})"
    )
    rows = tx.fetch(sql, (access_purpose, *tokens))
    return {(r[0], r[1], r[2]): (r[3], bool(r[4])) for r in rows}


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
