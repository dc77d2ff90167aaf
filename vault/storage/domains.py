"""Queries of token translation (vault/services/domains): the rows a token names in one
domain, a subject's rows of a field in another, and the translation records (migration 0011).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime

from sqlalchemy import and_, exists, insert, or_, select, tuple_

from vault.storage import tables as t
from vault.storage.rows import VALUE_COLUMNS
from vault.storage.store import Tx, check_matches


@dataclass(frozen=True, slots=True)
class DomainRow:
    """A stored value with the wrapped key that proves it live; `row` is the whole row in
    VALUE_COLUMNS order (it holds a ciphertext: no repr)."""

    subject_id: str
    field: str
    token: str
    key_version: int
    ciphertext: bytes = dc_field(repr=False)
    wrapped: str = dc_field(repr=False)
    purpose: str = ""
    opted_out: bool = False
    row: tuple = dc_field(default=(), repr=False)


def rows_for_tokens(tx: Tx, tokens: Sequence[str], domain: str, access_purpose: str,
                    located: Sequence[tuple[int, bytes]] = ()) -> list[DomainRow]:
    """The live values stored under `tokens` in `domain`, oldest first, with whether their
    subject opted out of `access_purpose`. On PostgreSQL their key rows are share-locked, so a
    concurrent shred waits until this transaction commits. `located`: what the opaque tokens
    open to in `domain` (as Tx.values_for_tokens): a sequential token's row is found by its
    locator and kept only if its stored check matches."""
    if not tokens:
        return []
    v = t.field_values.c
    checks: dict[int, list[bytes]] = {}
    for locator, check in located:
        checks.setdefault(locator, []).append(check)
    by_token = and_(v.token.in_(sorted(set(tokens))), v.locator.is_(None))
    where = or_(by_token, v.locator.in_(sorted(checks))) if checks else by_token
    rows = _rows(tx, and_(where, v.domain == domain), access_purpose)
    at_locator, at_check = VALUE_COLUMNS.index("locator"), VALUE_COLUMNS.index("token_check")
    return [r for r in rows
            if r.row[at_locator] is None or check_matches(checks.get(r.row[at_locator], ()), r.row[at_check])]


def rows_of_subjects(tx: Tx, pairs: Sequence[tuple[str, str]], domain: str) -> list[DomainRow]:
    """The live values of each (subject, field) in `domain`."""
    if not pairs:
        return []
    v = t.field_values.c
    return _rows(tx, and_(tuple_(v.subject_id, v.field).in_(sorted(set(pairs))), v.domain == domain), "")


def _rows(tx: Tx, where, access_purpose: str) -> list[DomainRow]:  # type: ignore[no-untyped-def]
    v, k, c = t.field_values.c, t.data_keys.c, t.consent_optouts.c
    opted_out = exists().where(c.subject_id == v.subject_id, c.purpose == access_purpose)
    columns = [getattr(v, name) for name in VALUE_COLUMNS]
    stmt = (
        select(*columns, k.wrapped, opted_out.label("opted_out"))
        .join(t.data_keys, (k.subject_id == v.subject_id) & (k.version == v.key_version))
        .where(where)
        .order_by(v.id)
    )
    if tx.dialect == "postgresql":
        stmt = stmt.with_for_update(read=True, of=t.data_keys)
    out = []
    n = len(VALUE_COLUMNS)
    at = {name: i for i, name in enumerate(VALUE_COLUMNS)}
    for r in tx.conn.execute(stmt):
        row = tuple(r[:n])
        out.append(DomainRow(row[at["subject_id"]], row[at["field"]], row[at["token"]], row[at["key_version"]],
                             bytes(row[at["ciphertext"]]), r[n], row[at["purpose"]], bool(r[n + 1]), row))
    return out


TRANSLATION_COLUMNS = ("at", "request_id", "principal", "subject_id", "field", "from_domain", "to_domain", "outcome")


def add_translations(tx: Tx, rows: Sequence[tuple]) -> None:
    """Record translated items (tuples in TRANSLATION_COLUMNS order)."""
    if rows:
        tx.conn.execute(insert(t.token_translations), [dict(zip(TRANSLATION_COLUMNS, r)) for r in rows])


@dataclass(frozen=True, slots=True)
class Translation:
    at: datetime
    request_id: str
    principal: str
    subject_id: str | None
    field: str | None
    from_domain: str
    to_domain: str
    outcome: str


def translations_of_subject(tx: Tx, subject_id: str) -> list[Translation]:
    """Every recorded translation of the subject's tokens, oldest first."""
    c = t.token_translations.c
    stmt = select(*(getattr(c, n) for n in TRANSLATION_COLUMNS)).where(c.subject_id == subject_id).order_by(c.id)
    return [Translation(*r) for r in tx.conn.execute(stmt)]
