"""Catching a rolled-back database, and `pdv restore reconcile`.

Each chain's signed checkpoints are appended to a file outside the database
(audit_checkpoint_file). A database restored from an older copy, or rolled back, is behind
that file: one of its chains is at a lower seq than a checkpoint of it, or missing. Then,
even if the tombstone ledger was rolled back with it (so replay found nothing to do), the
server must not serve personal data: the shreds made since the copy may not all be known.

`reconcile` is the operator's way back: it re-applies every shred the ledger knows of,
writes a `restore` entry in the access log, checkpoints it, and appends a Vault-signed
restore record to the checkpoint file. The record names every chain's head at that moment
(the new baseline) and supersedes the checkpoints before it that the database falls short
of; checkpoints after it count again, and so do the baseline's own heads, so restoring an
older copy later (even the same one again) is caught like the first.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from vault.crypto.audit import checkpoint_payload
from vault.errors import Unavailable
from vault.keys.provider import Signer
from vault.services.audit import AuditChain, CheckpointFile, SignedRecord, iso
from vault.services.common import Caller, access_row, require_label
from vault.services.group_commit import GroupCommitter
from vault.services.lifecycle.replay import LedgerReplay, ReplayReport
from vault.storage.audit_log import AuditRepository, Checkpoint

log = logging.getLogger("pdv.restore")

RESTORE_KIND = "restore"  # the checkpoint file line's kind
RESTORE_TYPE = "pdv.restore-record.v1"  # the signed record's own type
REFUSED_FIELD = "restore_not_reconciled"


@dataclass(frozen=True)
class Shortfall:
    """A chain the database is behind on, and the signed evidence of how far it had got."""

    chain_id: str
    has: int | None  # the database's head seq; None: the database lacks the chain
    needs: int
    evidence: str  # "the checkpoint of <time>" or "the restore of <time>"

    def __str__(self) -> str:
        where = f"is at seq {self.has}" if self.has is not None else "is missing"
        return f"chain {self.chain_id} {where}; {self.evidence} records seq {self.needs}"


@dataclass(frozen=True)
class _Restore:
    at: str
    baseline: dict[str, int]


def _restore_of(record: SignedRecord, signer: Signer) -> _Restore | None:
    """The restore a record describes, if it is one and Vault signed exactly this text."""
    if record.kind != RESTORE_KIND or not signer.verify(record.text.encode(), record.signature):
        return None
    try:
        body = json.loads(record.text)
        if body["type"] != RESTORE_TYPE:
            return None
        return _Restore(str(body["at"]), {str(c): int(s) for c, s in body["baseline"].items()})
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _walk(lines: list[Checkpoint | SignedRecord], signer: Signer
          ) -> tuple[dict[str, list[Checkpoint]], dict[str, tuple[int, str]], dict[tuple[str, int], str]]:
    """Walk the file in order: the checkpoints still in force per chain, the floors validly
    signed restores set (chain → (seq, restore time)), and what those restores superseded
    ((chain, seq) → restore time)."""
    live: dict[str, list[Checkpoint]] = {}
    floors: dict[str, tuple[int, str]] = {}
    superseded: dict[tuple[str, int], str] = {}
    for line in lines:
        if isinstance(line, Checkpoint):
            live.setdefault(line.chain_id, []).append(line)
            continue
        restore = _restore_of(line, signer)
        if restore is None:
            continue
        for chain, cps in live.items():
            for cp in cps:
                if chain not in restore.baseline or cp.seq > restore.baseline[chain]:
                    superseded[(chain, cp.seq)] = restore.at
        live = {}
        floors = {chain: (seq, restore.at) for chain, seq in restore.baseline.items()}
    return live, floors, superseded


def shortfalls(heads: dict[str, tuple[int, bytes]], lines: list[Checkpoint | SignedRecord], signer: Signer
               ) -> list[Shortfall]:
    """The chains the database is behind the external record on (empty: not rolled back).
    A checkpoint counts only if its signature verifies (only those past the head are checked);
    a chain the database lacks is behind even its first checkpoint, at seq 0: chains are never
    deleted, and every chain's first moment is a checkpoint."""
    live, floors, _ = _walk(lines, signer)
    out = []
    for chain in sorted(set(live) | set(floors)):
        head = heads.get(chain)
        has = head[0] if head is not None else -1
        floor = floors.get(chain)
        if floor is not None and floor[0] > has:
            out.append(Shortfall(chain, head and head[0], floor[0], f"the restore of {floor[1]}"))
            continue
        for cp in sorted(live.get(chain, []), key=lambda c: -c.seq):
            if cp.seq <= has:
                break
            if signer.verify(_payload(cp), cp.signature):
                out.append(Shortfall(chain, head and head[0], cp.seq, f"the checkpoint of {cp.at}"))
                break
    return out


def superseded_checkpoints(lines: list[Checkpoint | SignedRecord], signer: Signer) -> dict[tuple[str, int], str]:
    """(chain, seq) → the time of the validly signed restore record that supersedes that
    checkpoint: one before the record that the restored database fell short of. `pdv audit
    verify` reports those as notes; any other checkpoint the database falls short of is a problem."""
    return _walk(lines, signer)[2]


def invalid_restore_records(lines: list[Checkpoint | SignedRecord], signer: Signer) -> list[str]:
    """The stated time of each restore record in the file whose signature does not verify."""
    out = []
    for line in lines:
        if isinstance(line, SignedRecord) and line.kind == RESTORE_KIND and _restore_of(line, signer) is None:
            try:
                out.append(str(json.loads(line.text).get("at", "?")))
            except (ValueError, AttributeError):
                out.append("?")
    return out


def _payload(cp: Checkpoint) -> bytes:
    return checkpoint_payload(cp.chain_id, cp.seq, cp.mac, cp.at)


def blocked_message(found: list[Shortfall]) -> str:
    """What a refused caller and the operator are told (chain ids and seqs only)."""
    first = found[0]
    more = f" (and {len(found) - 1} more chain(s))" if len(found) > 1 else ""
    return ("personal data is not served: the database is behind the external audit checkpoints, so it was "
            f"restored from an older copy or rolled back ({first}{more}); an operator must run "
            "`pdv restore reconcile` (README: Backup and restore)")


class RestoreGuard:
    """Whether this process may serve personal data: not while its database is behind the
    checkpoint file. Re-checks on its own thread until a reconcile clears it."""

    def __init__(self, repo: AuditRepository, sink: CheckpointFile, signer: Signer, committer: GroupCommitter,
                 clock: Callable[[], datetime], interval: float) -> None:
        self._repo, self._sink, self._signer, self._committer = repo, sink, signer, committer
        self._clock, self._interval = clock, interval
        self.message: str | None = None  # set while blocked; read without a lock (replaced whole)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> list[Shortfall]:
        """Compare the database's chain heads with the checkpoint file now; block or unblock.

        Raises:
            KeyUnavailable: Vault cannot check a signature.
        """
        lines = self._sink.read_all(skip_malformed=True)
        found = shortfalls(self._repo.chain_heads(), lines, self._signer) if lines else []
        self.message = blocked_message(found) if found else None
        return found

    def watch(self, on_clear: Callable[[], None]) -> None:
        """While blocked, re-check every `interval` seconds; call `on_clear` once it clears."""
        if self.message is None:
            return
        self._thread = threading.Thread(target=self._run, args=(on_clear,), name="pdv-restore-guard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, on_clear: Callable[[], None]) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - stay blocked, and say why, until a check succeeds
                log.error("restore check failed (%s); personal data stays unserved", type(exc).__name__)
                continue
            if self.message is None:
                log.warning("the database is no longer behind the checkpoint file (reconciled): serving personal data")
                on_clear()
                return

    def refuse(self, principal: str, method: str) -> None:
        """Write the refusal of a call made while blocked to the access log (never raises)."""
        row = access_row(self._clock(), Caller(principal, f"gen-{uuid.uuid4().hex}"), "serve", method[:64],
                         "refused", field=REFUSED_FIELD)
        try:
            self._committer.run(lambda tx: tx.log_access([row]))
        except Exception as exc:  # noqa: BLE001 - the caller is refused either way
            log.error("could not write a refusal to the access log (%s)", type(exc).__name__)


@dataclass
class ReconcileReport:
    shortfalls: list[Shortfall]
    replay: ReplayReport
    restore_at: str | None  # the signed restore record's time; None when nothing was behind

    def to_json(self) -> dict:
        return {"behind": [str(s) for s in self.shortfalls], **self.replay.to_json(),
                "restore_recorded_at": self.restore_at}


def reconcile(replay: LedgerReplay, audit: AuditChain, repo: AuditRepository, sink: CheckpointFile,
              signer: Signer, committer: GroupCommitter, clock: Callable[[], datetime], actor: str,
              reason: str) -> ReconcileReport:
    """After a restore: re-apply every shred the ledger knows of, log and checkpoint the restore,
    and append a signed restore record (the new baseline) to the checkpoint file.

    Raises:
        InvalidInput: no reason, or one too long.
        Unavailable: Vault could not sign the checkpoint or the record, or the file could not
            be appended; run it again (every step is idempotent).
    """
    require_label("reason", reason, 1000)
    lines = sink.read_all(skip_malformed=True)
    behind = shortfalls(repo.chain_heads(), lines, signer) if lines else []
    replay.run()  # again: the ledger may have been appended to since bootstrap's run
    report = ReconcileReport(behind, replay.done, None)
    if not behind:
        return report
    now = clock()
    caller = Caller(actor, f"restore-{uuid.uuid4().hex}")
    committer.run(lambda tx: tx.log_access([access_row(now, caller, "restore", "restore", "reconciled",
                                                       field=f"chains_behind_{len(behind)}")]))
    if not audit.checkpoint():
        raise Unavailable("could not sign a checkpoint of the restore entry; run `pdv restore reconcile` again")
    heads = repo.chain_heads()
    text = json.dumps({
        "type": RESTORE_TYPE, "at": iso(now), "actor": actor, "reason": reason,
        "baseline": {chain: seq for chain, (seq, _mac) in sorted(heads.items())},
        "superseded": [{"chain": s.chain_id, "seq": s.needs, "evidence": s.evidence} for s in behind],
        "replayed": report.replay.to_json(),
    }, sort_keys=True, separators=(",", ":"))
    (signature,) = signer.sign([text.encode()])
    try:
        sink.append_record(SignedRecord(RESTORE_KIND, text, signature))
    except OSError as exc:
        raise Unavailable(f"could not append the restore record to audit_checkpoint_file ({exc.strerror})") from None
    report.restore_at = iso(now)
    log.warning("restore reconciled by %s: %d chain(s) were behind, %d shred(s) re-applied; restore record appended",
                actor, len(behind), report.replay.reapplied)
    return report
