"""`pdv audit verify / query / export`: recompute every chain, check checkpoints, read the log.

verify walks the access log in id order and, per chain, expects seq 1, 2, 3 ... each with
the MAC its predecessor and its own fields give. So an edited entry fails its MAC, a
deleted, inserted or moved entry breaks the sequence (or its MAC), and a truncated tail
falls short of the chain head in `audit_chains` and of the newest checkpoint — which is
signed by Vault and also kept in a file outside the database, so a tail removed together
with its database head and checkpoints (a rolled-back or restored database) is still caught.

It does not stop at the first problem: after a restore, or one old tampering, every run
would otherwise print the same line and hide anything newer. Each problem is collected
(the first MAX_PROBLEMS listed, the rest counted), and the walk resynchronises after each
one so that one tampering yields one problem, not one per later entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from vault.crypto.audit import GENESIS, chain_mac, checkpoint_payload, encode_entry_items
from vault.keys.provider import Signer
from vault.services.audit import CheckpointFile, FileRecords, iso, micros
from vault.services.lifecycle.restore import RESTORE_KIND, invalid_restore_records, superseded_checkpoints
from vault.storage.access_items import decode_items
from vault.storage.audit_log import ENTRY_FIELDS, AuditRepository, Checkpoint, EntryFilter, LogRow

MAX_PROBLEMS = 100  # listed in a report; the others are counted (a restored copy can hold thousands)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing found wrong, located as precisely as verify can (chain, seq, entry id)."""

    what: str
    chain: str | None = None
    seq: int | None = None
    entry_id: int | None = None

    def __str__(self) -> str:
        where = []
        if self.chain is not None:
            where.append(f"chain {self.chain}")
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        if self.entry_id is not None:
            where.append(f"(id {self.entry_id})" if where else f"entry id {self.entry_id}")
        return f"{' '.join(where)}: {self.what}" if where else self.what


@dataclass
class VerifyReport:
    entries: int = 0
    items: int = 0  # the entries' items (an entry holds one request's)
    chains: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)  # the first MAX_PROBLEMS found
    unlisted: int = 0  # problems found beyond MAX_PROBLEMS
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problem_count(self) -> int:
        return len(self.problems) + self.unlisted

    @property
    def problem(self) -> str | None:
        """The first problem found, as text; None when the log is intact."""
        return str(self.problems[0]) if self.problems else None

    def add(self, what: str, chain: str | None = None, seq: int | None = None, entry_id: int | None = None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(what, chain, seq, entry_id))
        else:
            self.unlisted += 1


@dataclass
class _ChainWalk:
    """Where verify stands in one chain: the last seq seen and the MACs the next entry may follow."""

    seq: int = 0
    prevs: tuple[bytes, ...] = (GENESIS,)  # after a MAC mismatch: the stored and the recomputed MAC
    macs: dict[int, bytes] = field(default_factory=dict)  # stored MAC at each checkpointed seq


def verify_log(repo: AuditRepository, key: bytes, signer: Signer, sink: CheckpointFile) -> VerifyReport:
    """Check every entry, chain head and checkpoint, and report every problem found.

    Args:
        repo: the access log's tables.
        key: the chain key (from the Vault-protected index root).
        signer: checks the checkpoints' Vault signatures.
        sink: the checkpoint file outside the database (its path may be None).

    Returns:
        The report: counts, problems (bounded by MAX_PROBLEMS, the rest counted) and notes.
    """
    report = VerifyReport()
    heads = repo.chain_heads()
    report.chains = len(heads)
    expected = gather_checkpoints(repo, signer, sink, report, heads)
    with repo.reading() as snapshot:
        index = _IndexCheck(repo.index_rows(conn=snapshot), report)
        walks = _walk_entries(repo.log_rows(conn=snapshot), key, heads, expected, report, index)
        index.finish()
    _check_coverage(expected, walks, report)
    _check_heads(heads, walks, report)
    return report


def _walk_entries(rows: Iterator[LogRow], key: bytes, heads: dict[str, tuple[int, bytes]],
                  expected: dict[tuple[str, int], bytes], report: VerifyReport, index: "_IndexCheck") -> dict[str, _ChainWalk]:
    walks: dict[str, _ChainWalk] = {}
    unknown: set[str] = set()
    for e in rows:
        report.entries += 1
        before = report.problem_count
        if e.chain_id is None or e.seq is None or e.mac is None:
            report.add("not chained (written without a chain, or forged)", entry_id=e.id)
        elif e.chain_id not in heads:
            if e.chain_id not in unknown:  # one problem per unknown chain, not per entry
                unknown.add(e.chain_id)
                report.add("unknown chain (forged entry, or its chain head was deleted)", e.chain_id, e.seq, e.id)
        else:
            _check_entry(key, e, walks.setdefault(e.chain_id, _ChainWalk()), expected, report)
        # An entry already found wrong is not also reported for the index rows its edit invalidated.
        index.check(e, trusted=report.problem_count == before)
    return walks


def _check_entry(key: bytes, e: LogRow, walk: _ChainWalk, expected: dict[tuple[str, int], bytes],
                 report: VerifyReport) -> None:
    assert e.chain_id is not None and e.seq is not None and e.mac is not None
    if e.seq <= walk.seq:
        # A replayed copy, or an entry moved back: report it, and keep the position.
        report.add(f"seq {walk.seq + 1} was due; seq {e.seq} came again (an entry was inserted, replayed or moved)",
                   e.chain_id, e.seq, e.id)
        return
    encoded = encode_entry_items(e.chain_id, e.seq, micros(e.at), e.fields, e.items)
    if e.seq > walk.seq + 1:
        # Its predecessor is gone, so its MAC cannot be checked: resume from the stored one.
        first, last = walk.seq + 1, e.seq - 1
        missing = f"seq {first}" if first == last else f"seqs {first}-{last} ({last - first + 1} entries)"
        report.add(f"{missing} missing before this entry (deleted, or moved)", e.chain_id, e.seq, e.id)
        walk.prevs = (e.mac,)
    else:
        macs = [chain_mac(key, prev, encoded) for prev in walk.prevs]
        if e.mac in macs:
            walk.prevs = (e.mac,)
        else:
            report.add("MAC mismatch (entry edited, forged or moved)", e.chain_id, e.seq, e.id)
            # The next entry follows the stored MAC if only these fields were edited, the
            # recomputed one if only the MAC was: accept either, so one edit is one problem.
            walk.prevs = (e.mac, macs[0])
    walk.seq = e.seq
    if (e.chain_id, e.seq) in expected:
        walk.macs[e.seq] = e.mac


class _IndexCheck:
    """The per-subject index against the entries, merged in entry id order.

    The index is derived data, and only one direction of a mismatch hides anything: an entry
    naming a subject with no index row for it would be left out of that person's access
    report, so it is a problem. An index row for an entry that does not name the subject (or
    no longer exists) hides nothing — reading through the index keeps only the items that
    name the subject, and a deleted entry is a problem of its chain already — so it is a note.
    """

    def __init__(self, rows: Iterator[tuple[int, str]], report: VerifyReport) -> None:
        self._rows, self._report = rows, report
        self._next: tuple[int, str] | None = next(rows, None)
        self._extra = 0
        self._items = 0

    def _take(self, entry_id: int) -> set[str]:
        """The index's subjects of `entry_id`; rows of smaller ids (entries that are gone) are counted extra."""
        found: set[str] = set()
        while self._next is not None and self._next[0] <= entry_id:
            if self._next[0] == entry_id:
                found.add(self._next[1])
            else:
                self._extra += 1
            self._next = next(self._rows, None)
        return found

    def check(self, e: LogRow, trusted: bool) -> None:
        indexed = self._take(e.id)
        if e.items is None:
            named = {e.fields[4]} - {None}
            self._items += 1
        else:
            try:
                items = decode_items(e.items)
            except ValueError as exc:
                if trusted:  # its MAC held: only a newer PDV's items would do that
                    self._report.add(f"its items column cannot be read ({exc})", e.chain_id, e.seq, e.id)
                return
            named = {item[0] for item in items} - {None}
            self._items += len(items)
        for subject in sorted(named - indexed) if trusted else ():
            self._report.add(f"names a subject the per-subject index lacks (subject {subject}): the index row was "
                             "deleted, so this access would be missing from that person's report", e.chain_id, e.seq, e.id)
        self._extra += len(indexed - named)

    def finish(self) -> None:
        self._take(2**63)
        self._report.items = self._items
        if self._extra:
            self._report.notes.append(f"{self._extra} per-subject index row(s) name a subject their entry does not, "
                                      "or an entry that does not exist: added or left behind, they hide nothing "
                                      "(reads keep only the items that name the subject)")


def _check_coverage(expected: dict[tuple[str, int], bytes], walks: dict[str, _ChainWalk], report: VerifyReport) -> None:
    """Every signed checkpoint must be reached by its chain, at the MAC it signed."""
    for (chain, seq), mac in sorted(expected.items()):
        walk = walks.get(chain, _ChainWalk())
        if seq == 0:
            continue  # a chain's start: nothing to reach
        if seq > walk.seq:
            report.add(f"missing; a signed checkpoint covers up to seq {seq}, the log ends at {walk.seq} "
                       "(the tail was truncated or the database rolled back)", chain, walk.seq + 1)
        elif seq in walk.macs and walk.macs[seq] != mac:  # an absent seq is reported as missing already
            report.add("differs from its signed checkpoint (entry missing, edited or replaced)", chain, seq)


def _check_heads(heads: dict[str, tuple[int, bytes]], walks: dict[str, _ChainWalk], report: VerifyReport) -> None:
    for chain, (seq, mac) in sorted(heads.items()):
        walk = walks.get(chain, _ChainWalk())
        if seq == walk.seq and (seq == 0 or mac in walk.prevs):
            continue
        what = "missing (truncated tail)" if seq > walk.seq else "beyond the recorded chain head"
        report.add(f"{what}; the head records seq {seq}, the log ends at {walk.seq}", chain, min(seq, walk.seq) + 1)


def gather_checkpoints(repo: AuditRepository, signer: Signer, sink: CheckpointFile,
                       report: VerifyReport, heads: dict[str, tuple[int, bytes]]) -> dict[tuple[str, int], bytes]:
    """Signature-checked checkpoints of the database and the file, as (chain, seq) → mac.

    The server writes each checkpoint to the file first and then to the database, so:
    one in the database but not in the file is a deleted (or unreadable) file line, a
    problem; one in the file but not in the database is what a crash or a failed insert
    between the two writes leaves, a note — the log is checked against it all the same,
    so a tail cut with its database checkpoints still shows as missing. A missing or empty
    file is a problem while the database holds a chain, since every chain's first moment
    is a checkpoint at seq 0. A checkpoint with a bad signature is left out of the result.
    """
    in_db = repo.checkpoints()
    records = sink.records()
    in_file = records.checkpoints if records is not None else []
    out: dict[tuple[str, int], bytes] = {}
    for where, cps in (("database", in_db), ("checkpoint file", in_file)):
        for cp in cps:
            if not signer.verify(checkpoint_payload(cp.chain_id, cp.seq, cp.mac, cp.at), cp.signature):
                report.add(f"the {where} checkpoint's signature is invalid", cp.chain_id, cp.seq)
                continue
            if out.setdefault((cp.chain_id, cp.seq), cp.mac) != cp.mac:
                report.add("the database and file checkpoints disagree", cp.chain_id, cp.seq)
    _drop_superseded(sink, signer, out, report)
    report.checkpoints = len(out)
    if records is None:
        report.notes.append("no external record (audit_external_record = false): checked the database "
                            "checkpoints only; a tail cut together with them is not detected")
    else:
        _compare_file(sink, records, in_db, in_file, heads, report)
    for chain in sorted(set(heads) - {c for c, _ in out}):
        report.notes.append(f"chain {chain}: not anchored outside the database yet (no checkpoint; "
                            "a chain started after a failed write gets its first one within the window)")
    return out


def _drop_superseded(sink: CheckpointFile, signer: Signer, out: dict[tuple[str, int], bytes],
                     report: VerifyReport) -> None:
    """After a reconciled restore: the file checkpoints a validly signed restore record
    supersedes (the restored database fell short of them) are notes, and the log need not
    reach them. A restore record whose signature fails is a problem and supersedes nothing."""
    lines = sink.read_all(skip_malformed=True)  # a malformed line is _compare_file's to report
    if not lines:
        return
    for bad in invalid_restore_records(lines, signer):
        report.add(f"a restore record in the checkpoint file has an invalid signature (restore of {bad})")
    for (chain, seq), at in sorted(superseded_checkpoints(lines, signer).items()):
        if out.pop((chain, seq), None) is not None:
            report.notes.append(f"chain {chain} seq {seq}: checkpoint superseded by the restore of {at}")


def _compare_file(sink: CheckpointFile, records: FileRecords, in_db: list[Checkpoint], in_file: list[Checkpoint],
                  heads: dict[str, tuple[int, bytes]], report: VerifyReport) -> None:
    for n in records.unreadable:
        report.notes.append(f"checkpoint file line {n} is not a readable record (a torn append, or an edit); "
                            "a checkpoint it held is still checked through its database copy")
    for n, kind, _ in records.other:
        if kind != RESTORE_KIND:  # restore records: _drop_superseded
            report.notes.append(f"checkpoint file line {n}: a {kind!r} record, which this verify does not check")
    if not in_file:
        if heads:
            state = "missing" if not records.exists else "empty (no checkpoint line)"
            report.add(f"the checkpoint file {sink.path} is {state}, yet the database holds {len(heads)} chain(s) "
                       f"and {len(in_db)} checkpoint(s): the file was deleted, emptied or replaced")
        return
    file_keys = {(c.chain_id, c.seq) for c in in_file}
    db_keys = {(c.chain_id, c.seq) for c in in_db}
    for chain, seq in sorted(db_keys - file_keys):
        report.add("checkpoint in the database but not in the checkpoint file (a line was deleted from the file)",
                   chain, seq)
    only_in_file: dict[str, list[int]] = {}
    for chain, seq in sorted(file_keys - db_keys):
        only_in_file.setdefault(chain, []).append(seq)
    for chain, seqs in sorted(only_in_file.items()):
        report.notes.append(f"chain {chain}: {len(seqs)} checkpoint(s) in the file but not in the database "
                            f"(seq {', '.join(map(str, seqs[:5]))}{' ...' if len(seqs) > 5 else ''}): a crash or "
                            "failed insert between the two writes, or a rolled-back database; checked against the log")


def export_lines(repo: AuditRepository, where: EntryFilter | None = None) -> Iterator[str]:
    """One JSON object per item of each entry (a SIEM's input): who, what, why, which, outcome —
    never a value. The items of one entry (one request) share its id, chain, seq and mac, and
    `item` is the position in it."""
    for e in repo.entries(where):
        record = {"id": e.id, "item": e.item, "at": iso(e.at), **dict(zip(ENTRY_FIELDS, e.fields)),
                  "chain": e.chain_id, "seq": e.seq, "mac": e.mac.hex() if e.mac is not None else None}
        yield json.dumps(record, sort_keys=True)


__all__ = ["Checkpoint", "EntryFilter", "MAX_PROBLEMS", "Problem", "VerifyReport", "export_lines",
           "gather_checkpoints", "verify_log"]
