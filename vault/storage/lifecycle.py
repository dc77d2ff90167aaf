"""Queries of disposal: legal holds, shredding and tombstones.

A single-subject shred is a latency target, so the queries every shred makes are plain SQL
at the driver (Core's statement building costs more than these indexed queries); the rest
is Core.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update

from vault.storage import tables as t
from vault.storage.rows import SCRUBBED_FINGERPRINT
from vault.storage.store import Tx


def _fetch_in(tx: Tx, sql: str, subject_ids: Sequence[str]) -> list:
    """Rows of `sql`, its `{in_ids}` made the driver's `IN` over the subject ids (no ids: no rows)."""
    if not subject_ids:
        return []
    one_of, params = tx.one_of(subject_ids)
    return tx.fetch(sql.format(in_ids=one_of), params)


def active_holds(tx: Tx, subject_ids: Sequence[str]) -> dict[str, list[str]]:
    """Case ids of the unreleased holds on each subject that has any."""
    rows = _fetch_in(tx, "SELECT subject_id, case_id FROM legal_holds WHERE subject_id {in_ids} "
                         "AND released_at IS NULL ORDER BY id", subject_ids)
    out: dict[str, list[str]] = {}
    for subject_id, case_id in rows:
        out.setdefault(subject_id, []).append(case_id)
    return out


def place_hold(tx: Tx, subject_id: str, case_id: str, reason: str, actor: str, now: datetime) -> bool:
    """Place a hold unless the same case already holds the subject; True if placed."""
    if case_id in active_holds(tx, [subject_id]).get(subject_id, []):
        return False
    tx.conn.execute(insert(t.legal_holds).values(
        subject_id=subject_id, case_id=case_id, reason=reason, placed_by=actor, placed_at=now,
    ))
    return True


def release_hold(tx: Tx, subject_id: str, case_id: str, actor: str, now: datetime) -> int:
    c = t.legal_holds.c
    result = tx.conn.execute(
        update(t.legal_holds)
        .where(c.subject_id == subject_id, c.case_id == case_id, c.released_at.is_(None))
        .values(released_by=actor, released_at=now)
    )
    return result.rowcount


def holds_in_force(tx: Tx, subject_id: str | None = None, limit: int = 10_000) -> list[tuple]:
    """The unreleased holds (of one subject, or all), oldest first: (subject_id, case_id,
    reason, placed_by, placed_at), at most `limit` of them."""
    c = t.legal_holds.c
    query = select(c.subject_id, c.case_id, c.reason, c.placed_by, c.placed_at).where(c.released_at.is_(None))
    if subject_id is not None:
        query = query.where(c.subject_id == subject_id)
    return [tuple(r) for r in tx.conn.execute(query.order_by(c.id).limit(limit))]


def existing_subjects(tx: Tx, subject_ids: Sequence[str]) -> set[str]:
    return {r[0] for r in _fetch_in(tx, "SELECT id FROM subjects WHERE id {in_ids}", subject_ids)}


def subject_keys(tx: Tx, subject_ids: Sequence[str]) -> dict[str, list[int]]:
    """KEK versions of each subject's wrapped DEKs (what a backup of them depends on)."""
    out: dict[str, list[int]] = {}
    for subject_id, kek_version in _fetch_in(
        tx, "SELECT subject_id, kek_version FROM data_keys WHERE subject_id {in_ids}", subject_ids
    ):
        out.setdefault(subject_id, []).append(kek_version)
    return out


def value_counts(tx: Tx, subject_ids: Sequence[str], fields: Sequence[str] | None = None,
                 expired_by: datetime | None = None) -> dict[str, int]:
    if not subject_ids:
        return {}
    if fields is None and expired_by is None:
        return {s: int(n) for s, n in _fetch_in(
            tx, "SELECT subject_id, COUNT(*) FROM field_values WHERE subject_id {in_ids} GROUP BY subject_id",
            subject_ids)}
    c = t.field_values.c
    stmt = select(c.subject_id, func.count()).where(c.subject_id.in_(subject_ids)).group_by(c.subject_id)
    if fields is not None:
        stmt = stmt.where(c.field.in_(fields))
    if expired_by is not None:
        stmt = stmt.where(c.expires_at <= expired_by)
    return {s: n for s, n in tx.conn.execute(stmt)}


def subjects_with_live_values(tx: Tx, subject_ids: Sequence[str], expired_by: datetime) -> set[str]:
    """Those of `subject_ids` holding a value that has not expired by `expired_by`."""
    c = t.field_values.c
    return set(tx.conn.scalars(
        select(c.subject_id).where(c.subject_id.in_(subject_ids), c.expires_at > expired_by).distinct()
    ))


def destroy_subjects(tx: Tx, subject_ids: Sequence[str]) -> None:
    """Delete the values, blind indexes, wrapped DEKs, opt-outs, released holds and subject rows: with the DEK gone,
    any copy of a ciphertext is noise. Reserved format-preserving tokens stay reserved, so
    a shredded token is never issued again."""
    if not subject_ids:
        return
    one_of, params = tx.one_of(subject_ids)
    # Only released holds can be left (an active one blocks the shred); the access log keeps their history.
    # The issuance ledger (token_holders) goes too: who held tokens of a person no longer held.
    for table in ("field_values", "data_keys", "consent_optouts", "legal_holds", "token_holders"):
        tx.execute(f"DELETE FROM {table} WHERE subject_id {one_of}", params)
    tx.execute(f"DELETE FROM subjects WHERE id {one_of}", params)


def destroy_fields(tx: Tx, subject_id: str, fields: Sequence[str], expired_by: datetime | None = None) -> None:
    """Delete the subject's values of `fields` (only those expired by `expired_by`, if given)."""
    c = t.field_values.c
    stmt = delete(t.field_values).where(c.subject_id == subject_id, c.field.in_(fields))
    if expired_by is not None:
        stmt = stmt.where(c.expires_at <= expired_by)
    tx.conn.execute(stmt)


def request_records_of(tx: Tx, subject_ids: Sequence[str]) -> list[tuple[str, str, int, str, str]]:
    """(principal, request id, position, subject id, tokens JSON) of the stored tokenize records of `subject_ids`."""
    c = t.request_records.c
    return [tuple(r) for r in tx.conn.execute(
        select(c.principal, c.request_id, c.position, c.subject_id, c.tokens).where(c.subject_id.in_(subject_ids))
    )]


def held_tokens(tx: Tx, subject_ids: Sequence[str]) -> set[tuple[str, str, str]]:
    """(subject id, field, token) of every value the subjects hold."""
    c = t.field_values.c
    return {tuple(r) for r in tx.conn.execute(select(c.subject_id, c.field, c.token).where(c.subject_id.in_(subject_ids)))}


def set_request_record_tokens(tx: Tx, rows: Sequence[tuple[str, str, int, str]]) -> None:
    """Store new tokens JSON for stored tokenize records (principal, request id, position, tokens),
    and scrub their answers' fingerprints."""
    c = t.request_records.c
    for principal, request_id, position, tokens in rows:
        tx.conn.execute(update(t.request_records)
                        .where(c.principal == principal, c.request_id == request_id, c.position == position)
                        .values(tokens=tokens))
    _scrub_fingerprints(tx, sorted({(r[0], r[1]) for r in rows}))


def forget_request_records(tx: Tx, subject_ids: Sequence[str]) -> None:
    """Blank the subjects out of their stored tokenize records (a retry is told the record is not
    found), and scrub those answers' fingerprints."""
    # Find the answers by the subject index first: a correlated EXISTS would scan every answer.
    answers = _fetch_in(tx, "SELECT DISTINCT principal, request_id FROM request_records WHERE subject_id {in_ids}",
                        subject_ids)
    if not answers:
        return
    _scrub_fingerprints(tx, [(p, r) for p, r in answers])
    one_of, params = tx.one_of(subject_ids)
    tx.execute(f"UPDATE request_records SET subject_id = '', tokens = '{{}}' WHERE subject_id {one_of}", params)


def _scrub_fingerprints(tx: Tx, answers: Sequence[tuple[str, str]]) -> None:
    m = tx.marks(1)
    for principal, request_id in answers:
        tx.execute(f"UPDATE tokenize_requests SET fingerprint = {m} WHERE principal = {m} AND request_id = {m}",
                   (SCRUBBED_FINGERPRINT, principal, request_id))


_TOMBSTONE_COLUMNS = ("subject_id", "fields", "shredded_at", "receipt", "signature")


def add_tombstones(tx: Tx, rows: Sequence[dict]) -> None:
    tx.insert_rows("tombstones", _TOMBSTONE_COLUMNS, [tuple(r[c] for c in _TOMBSTONE_COLUMNS) for r in rows], (2,))


def subject_tombstones(tx: Tx, subject_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """The receipt and signature of each whole-subject shred among `subject_ids`."""
    rows = _fetch_in(tx, "SELECT subject_id, receipt, signature FROM tombstones WHERE subject_id {in_ids} "
                         "AND fields IS NULL", subject_ids)
    return {s: (r, sig) for s, r, sig in rows}

