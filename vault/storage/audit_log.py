"""Access-log chain heads, checkpoints, and reading the log back (verify, query, export)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import insert, select

from vault.storage import tables as t
from vault.storage.store import Store

ENTRY_FIELDS = ("request_id", "principal", "action", "purpose", "subject_id", "field", "token", "outcome")


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    at: datetime  # aware, UTC
    fields: tuple[str | None, ...]  # ENTRY_FIELDS order
    chain_id: str | None
    seq: int | None
    mac: bytes | None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    chain_id: str
    seq: int
    mac: bytes
    at: str
    signature: str


@dataclass(frozen=True, slots=True)
class EntryFilter:
    subject_id: str | None = None
    principal: str | None = None
    purpose: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditRepository:
    """The audit tables; each method is its own short transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def register_chain(self, chain_id: str, started_at: datetime, genesis: bytes) -> None:
        with self.store.transaction() as tx:
            tx.conn.execute(insert(t.audit_chains).values(chain_id=chain_id, started_at=started_at, seq=0, mac=genesis))

    def add_checkpoint(self, cp: Checkpoint) -> None:
        """Store a checkpoint; one already stored (a retry whose first try landed) is left as is."""
        c = t.audit_checkpoints.c
        with self.store.transaction() as tx:
            if tx.conn.execute(select(c.id).where(c.chain_id == cp.chain_id, c.seq == cp.seq)).first() is None:
                tx.conn.execute(insert(t.audit_checkpoints).values(
                    chain_id=cp.chain_id, seq=cp.seq, mac=cp.mac, at=cp.at, signature=cp.signature,
                ))

    def chain_heads(self) -> dict[str, tuple[int, bytes]]:
        c = t.audit_chains.c
        with self.store.snapshot() as tx:
            return {r.chain_id: (r.seq, bytes(r.mac)) for r in tx.conn.execute(select(c.chain_id, c.seq, c.mac))}

    def checkpoints(self) -> list[Checkpoint]:
        c = t.audit_checkpoints.c
        with self.store.snapshot() as tx:
            rows = tx.conn.execute(select(c.chain_id, c.seq, c.mac, c.at, c.signature).order_by(c.id)).all()
        return [Checkpoint(r.chain_id, r.seq, bytes(r.mac), r.at, r.signature) for r in rows]

    def entries(self, where: EntryFilter | None = None, batch: int = 10_000) -> Iterator[Entry]:
        """Every entry (or those matching `where`) in id order, streamed."""
        c = t.access_log.c
        stmt = select(c.id, c.at, *(c[name] for name in ENTRY_FIELDS), c.chain_id, c.seq, c.mac).order_by(c.id)
        if where is not None:
            for name, value in (("subject_id", where.subject_id), ("principal", where.principal),
                                ("purpose", where.purpose), ("action", where.action)):
                if value is not None:
                    stmt = stmt.where(c[name] == value)
            if where.since is not None:
                stmt = stmt.where(c.at >= _naive_on_sqlite(where.since, self.store.dialect))
            if where.until is not None:
                stmt = stmt.where(c.at < _naive_on_sqlite(where.until, self.store.dialect))
        with self.store.engine.connect() as conn:
            result = conn.execution_options(yield_per=batch).execute(stmt)
            for r in result:
                at = r[1] if r[1].tzinfo is not None else r[1].replace(tzinfo=timezone.utc)
                mac = r[-1]
                yield Entry(r[0], at, tuple(r[2:10]), r[10], r[11], bytes(mac) if mac is not None else None)


    def macs_before(self, cited: list[Entry], chunk: int = 1000) -> dict[int, bytes | None]:
        """For each cited entry, the stored MAC of its chain predecessor (seq - 1, written before
        it), None when that entry is not in the log. Read by (chain, seq) in chunks: the log has
        no index on them, so each statement is one pass over it (this stands in until the
        access-log redesign's indexed verify_cited)."""
        wanted: dict[str, set[int]] = {}
        for e in cited:
            if e.chain_id is not None and e.seq is not None and e.seq > 1:
                wanted.setdefault(e.chain_id, set()).add(e.seq - 1)
        c = t.access_log.c
        found: dict[tuple[str, int], list[tuple[int, bytes]]] = {}
        with self.store.snapshot() as tx:
            for chain_id, seqs in wanted.items():
                ordered = sorted(seqs)
                for i in range(0, len(ordered), chunk):
                    stmt = select(c.chain_id, c.seq, c.id, c.mac).where(
                        c.chain_id == chain_id, c.seq.in_(ordered[i:i + chunk]))
                    for r in tx.conn.execute(stmt):
                        found.setdefault((r.chain_id, r.seq), []).append((r.id, bytes(r.mac) if r.mac else b""))
        out: dict[int, bytes | None] = {}
        for e in cited:
            if e.chain_id is None or e.seq is None or e.seq <= 1:
                continue
            earlier = [(i, mac) for i, mac in found.get((e.chain_id, e.seq - 1), []) if i < e.id]
            out[e.id] = max(earlier)[1] if earlier else None
        return out


def _naive_on_sqlite(value: datetime, dialect: str) -> datetime:
    # SQLite compares the stored text: UTC without an offset.
    if dialect == "sqlite" and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value
