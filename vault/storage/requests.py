"""Queries of privacy requests (migration 0007): the request rows, their status history, the
actions linked to them, and the request DEKs kept in wrapped_secrets.

Ciphertexts go in and out as bytes; sealing and opening them is the rights service's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import delete, func, insert, select, update

from vault.storage import tables as t
from vault.storage.store import Tx

KEY_PREFIX = "request:"  # wrapped_secrets name of a request's DEK: "request:<case id>"


@dataclass(frozen=True)
class RequestRow:
    """One privacy_requests row; description, contact and response are ciphertexts."""

    id: str
    kind: str
    subject_id: str | None
    status: str
    received_at: datetime
    due_at: datetime
    closed_at: datetime | None
    opened_by: str
    description: bytes
    contact: bytes | None
    response: bytes | None


@dataclass(frozen=True)
class HistoryRow:
    at: datetime
    principal: str
    from_status: str | None
    to_status: str
    response_set: bool


@dataclass(frozen=True)
class ActionRow:
    at: datetime
    principal: str
    action: str
    subject_id: str | None
    detail: str | None
    outcome: str


_R = t.privacy_requests.c


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time PDV stores is UTC.
    return value if value is None or value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _row(r: Sequence) -> RequestRow:
    return RequestRow(r[0], r[1], r[2], r[3], _utc(r[4]), _utc(r[5]), _utc(r[6]), r[7], bytes(r[8]),  # type: ignore[arg-type]
                      None if r[9] is None else bytes(r[9]), None if r[10] is None else bytes(r[10]))


_COLUMNS = (_R.id, _R.kind, _R.subject_id, _R.status, _R.received_at, _R.due_at, _R.closed_at, _R.opened_by,
            _R.description, _R.contact, _R.response)


def add_request(tx: Tx, row: RequestRow, wrapped_key: str) -> None:
    """Insert a request, its DEK (wrapped) and its opening history row."""
    tx.add_secret(KEY_PREFIX + row.id, wrapped_key, row.received_at)
    tx.conn.execute(insert(t.privacy_requests).values(
        id=row.id, kind=row.kind, subject_id=row.subject_id, status=row.status, received_at=row.received_at,
        due_at=row.due_at, closed_at=row.closed_at, opened_by=row.opened_by, description=row.description,
        contact=row.contact, response=row.response,
    ))
    add_history(tx, row.id, row.received_at, row.opened_by, None, row.status, False)


def wrapped_key(tx: Tx, request_id: str) -> str | None:
    return tx.get_secret(KEY_PREFIX + request_id)


def get_request(tx: Tx, request_id: str, for_update: bool = False) -> RequestRow | None:
    stmt = select(*_COLUMNS).where(_R.id == request_id)
    if for_update and tx.dialect == "postgresql":
        stmt = stmt.with_for_update()  # two officers' updates of one request are serialised
    r = tx.conn.execute(stmt).first()
    return None if r is None else _row(r)


def list_requests(tx: Tx, status: str | None, kind: str | None, subject_id: str | None, open_only: bool,
                  limit: int) -> list[RequestRow]:
    """Requests matching every filter given, newest first."""
    stmt = select(*_COLUMNS).order_by(_R.received_at.desc(), _R.id).limit(limit)
    if status is not None:
        stmt = stmt.where(_R.status == status)
    if kind is not None:
        stmt = stmt.where(_R.kind == kind)
    if subject_id is not None:
        stmt = stmt.where(_R.subject_id == subject_id)
    if open_only:
        stmt = stmt.where(_R.closed_at.is_(None))
    return [_row(r) for r in tx.conn.execute(stmt)]


def overdue(tx: Tx, now: datetime, limit: int) -> list[RequestRow]:
    """Open requests due before `now`, the longest overdue first."""
    stmt = (select(*_COLUMNS).where(_R.closed_at.is_(None), _R.due_at < now)
            .order_by(_R.due_at, _R.id).limit(limit))
    return [_row(r) for r in tx.conn.execute(stmt)]


def set_state(tx: Tx, request_id: str, status: str, closed_at: datetime | None, response: bytes | None) -> None:
    """Store a request's new status (and closed_at), and its response ciphertext when given."""
    values: dict = {"status": status, "closed_at": closed_at}
    if response is not None:
        values["response"] = response
    tx.conn.execute(update(t.privacy_requests).where(_R.id == request_id).values(**values))


def add_history(tx: Tx, request_id: str, at: datetime, principal: str, from_status: str | None, to_status: str,
                response_set: bool) -> None:
    tx.conn.execute(insert(t.privacy_request_history).values(
        request_id=request_id, at=at, principal=principal, from_status=from_status, to_status=to_status,
        response_set=response_set,
    ))


def history(tx: Tx, request_id: str) -> list[HistoryRow]:
    c = t.privacy_request_history.c
    rows = tx.conn.execute(select(c.at, c.principal, c.from_status, c.to_status, c.response_set)
                           .where(c.request_id == request_id).order_by(c.id))
    return [HistoryRow(_utc(r[0]), r[1], r[2], r[3], bool(r[4])) for r in rows]  # type: ignore[arg-type]


def open_request_ids(tx: Tx, request_ids: Sequence[str]) -> set[str]:
    """Which of `request_ids` name a request that is not closed."""
    if not request_ids:
        return set()
    return set(tx.conn.scalars(select(_R.id).where(_R.id.in_(sorted(set(request_ids))), _R.closed_at.is_(None))))


def link_actions(tx: Tx, rows: Sequence[tuple[str, datetime, str, str, str | None, str | None, str]]) -> None:
    """Link actions to requests: (request id, at, principal, action, subject id, detail, outcome).
    Call it in the action's own transaction, so a link exists exactly when the action does."""
    columns = ("request_id", "at", "principal", "action", "subject_id", "detail", "outcome")
    if rows:
        tx.insert_rows("request_actions", columns, list(rows), (1,))


def actions(tx: Tx, request_id: str) -> list[ActionRow]:
    c = t.request_actions.c
    rows = tx.conn.execute(select(c.at, c.principal, c.action, c.subject_id, c.detail, c.outcome)
                           .where(c.request_id == request_id).order_by(c.id))
    return [ActionRow(_utc(r[0]), *r[1:]) for r in rows]  # type: ignore[arg-type]


def closed_before(tx: Tx, cutoff: datetime, limit: int) -> list[tuple[str, str | None]]:
    """(id, subject id) of requests closed before `cutoff`, oldest first (what retention disposes of)."""
    stmt = select(_R.id, _R.subject_id).where(_R.closed_at < cutoff).order_by(_R.closed_at, _R.id).limit(limit)
    return [(r[0], r[1]) for r in tx.conn.execute(stmt)]


def count_closed_before(tx: Tx, cutoff: datetime) -> int:
    return int(tx.conn.scalar(select(func.count()).select_from(t.privacy_requests).where(_R.closed_at < cutoff)) or 0)


def delete_requests(tx: Tx, request_ids: Sequence[str]) -> None:
    """Delete requests with their history, links and DEKs: with the DEK gone, a copy of the text is noise."""
    if not request_ids:
        return
    ids = sorted(set(request_ids))
    tx.conn.execute(delete(t.request_actions).where(t.request_actions.c.request_id.in_(ids)))
    tx.conn.execute(delete(t.privacy_request_history).where(t.privacy_request_history.c.request_id.in_(ids)))
    tx.conn.execute(delete(t.privacy_requests).where(_R.id.in_(ids)))
    tx.conn.execute(delete(t.wrapped_secrets).where(t.wrapped_secrets.c.name.in_([KEY_PREFIX + i for i in ids])))
