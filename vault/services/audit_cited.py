"""Checking only the access-log entries a report cites (the access report, vault/services/rights/),
without walking the whole log: each entry's MAC from its predecessor's, and the chain from it to
the next Vault-signed checkpoint."""

from __future__ import annotations

import bisect
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
    """Check the entries a report cites, without walking the whole log.

    An entry holds when its MAC recomputes from its predecessor's stored MAC and a signed
    checkpoint (in the database or the file, its Vault signature checked) at or after its seq
    on its chain is reached from it: every entry between recomputes in turn and the last one's
    MAC is the one signed. So an edit of the entry, or of any entry between it and that
    checkpoint, makes it False. The walk is one checkpoint interval (audit_checkpoint_entries,
    1,000) from each cited entry at most, shared by cited entries in the same interval.
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
    """The checkpoints of every chain, each signature checked (a Vault call) only when a cited
    entry needs that checkpoint: a report costs a few checks, not one per checkpoint stored."""

    def __init__(self, signer: Signer, checkpoints: Iterable[Checkpoint]) -> None:
        self._signer = signer
        self._by_chain: dict[str, dict[int, list[Checkpoint]]] = {}
        for cp in checkpoints:
            if cp.seq > 0:
                self._by_chain.setdefault(cp.chain_id, {}).setdefault(cp.seq, []).append(cp)
        self._seqs = {chain: sorted(marks) for chain, marks in self._by_chain.items()}
        self._checked: dict[tuple[str, int], bytes | None] = {}

    def first_at_or_after(self, chain: str, seq: int) -> tuple[int, bytes] | None:
        """The first checkpoint of `chain` at or after `seq` whose signature holds: (seq, signed mac)."""
        seqs = self._seqs.get(chain, [])
        for mark in seqs[bisect.bisect_left(seqs, seq):]:
            mac = self._signed_mac(chain, mark)
            if mac is not None:
                return mark, mac
        return None

    def _signed_mac(self, chain: str, seq: int) -> bytes | None:
        if (chain, seq) not in self._checked:
            self._checked[(chain, seq)] = next(
                (cp.mac for cp in self._by_chain[chain][seq]
                 if self._signer.verify(checkpoint_payload(cp.chain_id, cp.seq, cp.mac, cp.at), cp.signature)), None)
        return self._checked[(chain, seq)]


def _cited_on_chain(repo: AuditRepository, key: bytes, chain: str, cited: list[LogRow],
                    signed: _SignedMarks) -> dict[int, CitedCheck]:
    out: dict[int, CitedCheck] = {}
    for first in cited:
        if first.id in out:
            continue  # settled by an earlier walk
        mark = signed.first_at_or_after(chain, first.seq)  # type: ignore[arg-type]
        if mark is None:
            out[first.id] = CitedCheck(False, "no signed checkpoint at or after its seq yet", pending=True)
            continue
        target, target_mac = mark
        before = (0, GENESIS) if first.seq == 1 else repo.predecessor(chain, first.id)
        seq, prev = before if before is not None and before[1] is not None else (-1, b"")
        waiting: list[int] = []  # cited entries that recomputed, waiting for the checkpoint
        wanted = {r.id for r in cited if r.id not in out}
        for row in repo.chain_rows(chain, first.id):
            good = (row.seq == seq + 1 and row.mac is not None
                    and chain_mac(key, prev, encode_entry_items(chain, row.seq, micros(row.at), row.fields, row.items)) == row.mac)
            if not good:
                out.update((i, CitedCheck(False, f"seq {row.seq}, between it and the checkpoint at seq {target}, "
                                                 "does not recompute")) for i in waiting)
                waiting = []
                if row.id in wanted:
                    out[row.id] = CitedCheck(False, "its MAC does not recompute from its predecessor's")
            elif row.id in wanted:
                waiting.append(row.id)
            seq, prev = (row.seq if row.seq is not None else -1), row.mac or b""
            if seq >= target:
                ok = seq == target and target_mac == row.mac
                out.update((i, CitedCheck(True) if ok else CitedCheck(False, f"the chain differs from its checkpoint "
                                                                            f"at seq {target}")) for i in waiting)
                waiting = []
                break
        out.update((i, CitedCheck(False, f"the chain does not reach its checkpoint at seq {target}")) for i in waiting)
    return out
