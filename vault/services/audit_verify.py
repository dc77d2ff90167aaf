"""`pdv audit verify / query / export`: recompute every chain, check checkpoints, read the log.

verify walks the access log in id order and, per chain, expects seq 1, 2, 3 ... each with
the MAC its predecessor and its own fields give. So an edited entry fails its MAC, a
deleted, inserted or moved entry breaks the sequence (or its MAC), and a truncated tail
falls short of the chain head in `audit_chains` and of the newest checkpoint — which is
signed by Vault and also kept in a file outside the database, so a tail removed together
with its database head and checkpoints (a rolled-back or restored database) is still caught.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from vault.crypto.audit import GENESIS, chain_mac, checkpoint_payload, encode_entry
from vault.keys.provider import Signer
from vault.services.audit import CheckpointFile, iso, micros
from vault.storage.audit_log import ENTRY_FIELDS, AuditRepository, Checkpoint, Entry, EntryFilter


@dataclass
class VerifyReport:
    entries: int = 0
    chains: int = 0
    checkpoints: int = 0
    problem: str | None = None  # the first thing found wrong; None when the log is intact
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Bad(Exception):
    pass


def _entry_name(e: Entry) -> str:
    return f"chain {e.chain_id} seq {e.seq} (id {e.id})"


def verify_log(repo: AuditRepository, key: bytes, signer: Signer, sink: CheckpointFile) -> VerifyReport:
    """Check every entry, chain head and checkpoint; stop at the first problem found."""
    report = VerifyReport()
    try:
        _verify(repo, key, signer, sink, report)
    except _Bad as bad:
        report.problem = str(bad)
    return report


def _verify(repo: AuditRepository, key: bytes, signer: Signer, sink: CheckpointFile, report: VerifyReport) -> None:
    heads = repo.chain_heads()
    report.chains = len(heads)
    expected = _checkpoints(repo, signer, sink, report)
    state: dict[str, tuple[int, bytes]] = {}
    seen: dict[tuple[str, int], bytes] = {}
    for e in repo.entries():
        report.entries += 1
        if e.chain_id is None or e.seq is None or e.mac is None:
            raise _Bad(f"entry id {e.id} is not chained (written without a chain, or forged)")
        if e.chain_id not in heads:
            raise _Bad(f"{_entry_name(e)}: unknown chain (forged entry, or its chain head was deleted)")
        seq, prev = state.get(e.chain_id, (0, GENESIS))
        if e.seq != seq + 1:
            raise _Bad(f"{_entry_name(e)}: seq {seq + 1} was due (an entry was deleted, inserted or moved)")
        mac = chain_mac(key, prev, encode_entry(e.chain_id, e.seq, micros(e.at), e.fields))
        if mac != e.mac:
            raise _Bad(f"{_entry_name(e)}: MAC mismatch (entry edited, forged or moved)")
        state[e.chain_id] = (e.seq, mac)
        if (e.chain_id, e.seq) in expected:
            seen[(e.chain_id, e.seq)] = mac
    for (chain, seq), mac in sorted(expected.items()):
        last = state.get(chain, (0, GENESIS))[0]
        if seq > last:
            raise _Bad(f"chain {chain} seq {last + 1}: missing; a signed checkpoint covers up to seq {seq} "
                       "(the tail was truncated or the database rolled back)")
        if seen.get((chain, seq)) != mac:
            raise _Bad(f"chain {chain} seq {seq}: differs from its signed checkpoint")
    for chain, (seq, mac) in sorted(heads.items()):
        last, last_mac = state.get(chain, (0, GENESIS))
        if seq != last or mac != last_mac:
            what = "missing (truncated tail)" if seq > last else "beyond the recorded chain head"
            first = min(seq, last) + 1
            raise _Bad(f"chain {chain} seq {first}: {what}; the head records seq {seq}, the log ends at {last}")


def _checkpoints(repo: AuditRepository, signer: Signer, sink: CheckpointFile, report: VerifyReport) -> dict[tuple[str, int], bytes]:
    """Signature-checked checkpoints of the database and the file, as (chain, seq) → mac."""
    in_db = repo.checkpoints()
    try:
        in_file = sink.read()
    except ValueError as exc:
        raise _Bad(str(exc)) from None
    out: dict[tuple[str, int], bytes] = {}
    for where, cps in (("database", in_db), ("checkpoint file", in_file or [])):
        for cp in cps:
            if not signer.verify(checkpoint_payload(cp.chain_id, cp.seq, cp.mac, cp.at), cp.signature):
                raise _Bad(f"chain {cp.chain_id} seq {cp.seq}: the {where} checkpoint's signature is invalid")
            if out.setdefault((cp.chain_id, cp.seq), cp.mac) != cp.mac:
                raise _Bad(f"chain {cp.chain_id} seq {cp.seq}: the database and file checkpoints disagree")
    if in_file is None:
        report.notes.append("no audit_checkpoint_file configured: checked the database checkpoints only")
    else:
        db_keys, file_keys = {(c.chain_id, c.seq) for c in in_db}, {(c.chain_id, c.seq) for c in in_file}
        for chain, seq in sorted(file_keys - db_keys):
            raise _Bad(f"chain {chain} seq {seq}: checkpoint in the file but not in the database (rolled back or deleted)")
        for chain, seq in sorted(db_keys - file_keys):
            report.notes.append(f"chain {chain} seq {seq}: checkpoint missing from the file (append failed or file truncated)")
    report.checkpoints = len(out)
    return out


def export_lines(repo: AuditRepository, where: EntryFilter | None = None) -> Iterator[str]:
    """One JSON object per entry (a SIEM's input): who, what, why, which, outcome — never a value."""
    for e in repo.entries(where):
        record = {"id": e.id, "at": iso(e.at), **dict(zip(ENTRY_FIELDS, e.fields)),
                  "chain": e.chain_id, "seq": e.seq, "mac": e.mac.hex() if e.mac is not None else None}
        yield json.dumps(record, sort_keys=True)


__all__ = ["Checkpoint", "EntryFilter", "VerifyReport", "export_lines", "verify_log"]
