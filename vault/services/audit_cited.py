"""Checking only the access-log entries a report cites (the access report, vault/services/rights/),
without walking the log: each entry's MAC from its predecessor's stored MAC, and a Vault-signed
checkpoint of its chain at or after it. The cost is a few statements per cited entry and one
signature check per chain, whatever the log's size."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vault.crypto.audit import GENESIS, chain_mac, checkpoint_payload, encode_entry_items
from vault.keys.provider import Signer
from vault.services.audit import CheckpointFile, micros
from vault.storage.audit_log import AuditRepository, Checkpoint, LogRow


@dataclass(frozen=True, slots=True)
class CitedCheck:
    """What verify_cited found of one cited entry: true when it holds, else why not."""

    ok: bool
    why: str = ""
    # No signed checkpoint covers it yet (the newest entries of a chain, for about a second):
    # neither verified nor failed.
    pending: bool = False

    def __bool__(self) -> bool:
        return self.ok


def verify_cited(repo: AuditRepository, key: bytes, signer: Signer, sink: CheckpointFile,
                 entry_ids: Iterable[int]) -> dict[int, CitedCheck]:
    """Check the entries a report cites, without walking the log.

    An entry holds when its predecessor on its chain is the entry one seq before it, its MAC
    recomputes from that predecessor's stored MAC, and the chain's newest checkpoint whose
    Vault signature holds (database or file) is at or after its seq. Anyone without the chain
    key who edits, moves or forges a cited entry, or deletes the one before it, makes it
    False. What this does not prove — that every MAC from the entry up to that checkpoint
    recomputes, which only matters against someone holding the chain key, and deletions of
    entries nobody cites — is `pdv audit verify`'s walk. Checking the walk here cost one
    checkpoint interval per cited entry: 15 s for 1,000 accesses in a log of 1M entries.
    An entry no signed checkpoint covers yet is pending, neither verified nor failed.
    Checkpoints a restore superseded are not told apart here; `pdv audit verify` does that.
    """
    ids = sorted(set(entry_ids))
    rows = repo.rows_by_id(ids)
    out = {i: CitedCheck(False, "no such entry") for i in ids if i not in rows}
    records = sink.records()
    signed = _SignedMarks(signer, [*repo.checkpoints(), *(records.checkpoints if records is not None else [])])
    by_chain: dict[str, list[LogRow]] = {}
    for row in rows.values():
        if row.chain_id is None or row.seq is None or row.mac is None:
            out[row.id] = CitedCheck(False, "not chained")
        else:
            by_chain.setdefault(row.chain_id, []).append(row)
    for chain, cited in by_chain.items():
        out.update(_cited_on_chain(repo, key, chain, sorted(cited, key=lambda r: r.id), signed))
    return out


class _SignedMarks:
    """The checkpoints of every chain; a signature is checked (a Vault call) only when it is the
    newest of its chain, so a report costs about one check per chain, not one per checkpoint."""

    def __init__(self, signer: Signer, checkpoints: Iterable[Checkpoint]) -> None:
        self._signer = signer
        self._by_chain: dict[str, list[Checkpoint]] = {}
        for cp in checkpoints:
            if cp.seq > 0:
                self._by_chain.setdefault(cp.chain_id, []).append(cp)

    def newest(self, chain: str) -> int | None:
        """The seq of the chain's newest checkpoint whose signature holds."""
        for cp in sorted(self._by_chain.get(chain, []), key=lambda c: c.seq, reverse=True):
            if self._signer.verify(checkpoint_payload(cp.chain_id, cp.seq, cp.mac, cp.at), cp.signature):
                return cp.seq
        return None


def _cited_on_chain(repo: AuditRepository, key: bytes, chain: str, cited: list[LogRow],
                    signed: _SignedMarks) -> dict[int, CitedCheck]:
    out: dict[int, CitedCheck] = {}
    newest = signed.newest(chain)
    before_each = repo.predecessors(chain, [row.id for row in cited if row.seq != 1])
    for row in cited:
        before = (0, GENESIS) if row.seq == 1 else before_each.get(row.id)
        if before is None or before[1] is None or before[0] != row.seq - 1:  # type: ignore[operator]
            out[row.id] = CitedCheck(False, "the entry before it on its chain is missing")
        elif chain_mac(key, before[1], encode_entry_items(chain, row.seq, micros(row.at), row.fields,  # type: ignore[arg-type]
                                                         row.items)) != row.mac:
            out[row.id] = CitedCheck(False, "its MAC does not recompute from its predecessor's")
        elif newest is None or newest < row.seq:  # type: ignore[operator]
            out[row.id] = CitedCheck(False, "no signed checkpoint at or after its seq yet", pending=True)
        else:
            out[row.id] = CitedCheck(True)
    return out
