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
                 entry_ids: Iterable[int], read: dict[int, LogRow] | None = None) -> dict[int, CitedCheck]:
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
    `read`: the cited entries as the caller already read them (AuditRepository.subject_rows),
    so they are not read twice; each is checked as read.
    """
    ids = sorted(set(entry_ids))
    read = read or {}
    rows = {i: read[i] for i in ids if i in read}
    rows.update(repo.rows_by_id([i for i in ids if i not in rows]))
    out = {i: CitedCheck(False, "no such entry") for i in ids if i not in rows}
    by_chain: dict[str, list[LogRow]] = {}
    for row in rows.values():
        if row.chain_id is None or row.seq is None or row.mac is None:
            out[row.id] = CitedCheck(False, "not chained")
        else:
            by_chain.setdefault(row.chain_id, []).append(row)
    newest = newest_signed(repo, signer, sink, set(by_chain))
    for chain, cited in by_chain.items():
        out.update(_cited_on_chain(repo, key, chain, sorted(cited, key=lambda r: r.id), newest.get(chain)))
    return out


def newest_signed(repo: AuditRepository, signer: Signer, sink: CheckpointFile, chains: set[str]) -> dict[str, int]:
    """The seq of each chain's newest checkpoint whose Vault signature holds, in the database or
    the file (left out where none does), reading only the newest of each: the database's from the
    (chain_id, seq) index, newest first, and the file from its end. A signature is checked (a
    Vault call) only for a checkpoint newer than the best one found so far, so a report costs
    about one check per chain, however many checkpoints the log has."""
    out: dict[str, int] = {}
    for chain in chains:
        for cp in repo.newest_checkpoints(chain):
            if cp.seq > 0 and _signed(signer, cp):
                out[chain] = cp.seq
                break
    # The file matters where it is newer than the database (a checkpoint whose database write
    # failed, or one deleted from the database). A chain's lines are appended in seq order, so
    # reading back from the end, a chain is settled by its first line that verifies or that is
    # no newer than the database's.
    open_chains = set(chains)
    for cp in sink.newest_first(set(chains)) if chains else ():
        if cp.chain_id not in open_chains:
            continue
        if cp.seq <= out.get(cp.chain_id, 0):
            open_chains.discard(cp.chain_id)
        elif _signed(signer, cp):
            out[cp.chain_id] = cp.seq
            open_chains.discard(cp.chain_id)
        if not open_chains:
            break
    return out


def _signed(signer: Signer, cp: Checkpoint) -> bool:
    return signer.verify(checkpoint_payload(cp.chain_id, cp.seq, cp.mac, cp.at), cp.signature)


def _cited_on_chain(repo: AuditRepository, key: bytes, chain: str, cited: list[LogRow],
                    newest: int | None) -> dict[int, CitedCheck]:
    out: dict[int, CitedCheck] = {}
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
