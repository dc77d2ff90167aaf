"""The access log as tests read it: one dict per item, whatever form its entry is stored in."""

from __future__ import annotations

from vault.storage.audit_log import ENTRY_FIELDS, AuditRepository
from vault.storage.store import Store


def logged_items(store: Store, **where: object) -> list[dict]:
    """Every item of every entry, in order, as {id, at, request_id, principal, action, purpose,
    subject_id, field, token, outcome, chain_id, seq, mac, item}, those matching `where`."""
    out = []
    for e in AuditRepository(store).entries():
        row = {"id": e.id, "at": e.at, **dict(zip(ENTRY_FIELDS, e.fields)), "chain_id": e.chain_id, "seq": e.seq,
               "mac": e.mac, "item": e.item}
        if all(row[k] == v for k, v in where.items()):
            out.append(row)
    return out
