"""Crypto-shredding and legal holds.

A shred deletes a subject's wrapped DEKs, ciphertexts and blind indexes in one
transaction, with a tombstone and a receipt signed by Vault (signed before the
commit: if Vault cannot sign, nothing is destroyed). With the DEK gone, every copy
of the ciphertexts is noise; database backups taken earlier hold the wrapped DEK
until the KEK versions that wrapped it are trimmed, and the receipt says so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from vault.catalog import Catalog
from vault.errors import Conflict, InvalidInput, NotFound, UnknownField
from vault.keys.provider import Signer
from vault.services.coalescer import Coalescer
from vault.services.common import Caller, Limits, access_row, require_batch, require_label
from vault.services.keyring import KeyRing
from vault.services.ledger import TombstoneLedger
from vault.services.tokenize_model import TokenizeOutcome, is_subject_id
from vault.storage import lifecycle as db
from vault.storage.store import Store, Tx

log = logging.getLogger("pdv.shred")

RECEIPT_TYPE = "pdv.shred-receipt.v1"
ATTEMPTS = 3
BACKUPS = (
    "Database copies taken before shredded_at still hold the wrapped data key. They become "
    "unrecoverable when Vault KEK versions up to kek_versions' highest are trimmed (pdv keys trim, "
    "after the backup horizon). Until then, restoring such a copy is caught by the tombstone ledger."
)


@dataclass(frozen=True)
class _Order:
    """One caller's shred: whose data, by whom, why."""

    caller: Caller
    subject_ids: list[str]
    reason: str


@dataclass(frozen=True)
class ShredResult:
    subject_id: str
    status: str  # shredded | already_shredded | on_hold | not_found | kept (disposal: nothing expired)
    hold_case_ids: tuple[str, ...] = ()
    receipt: str = ""
    signature: str = ""


class ShredService:
    def __init__(
        self, store: Store, keyring: KeyRing, signer: Signer, catalog: Catalog, limits: Limits,
        ledger: TombstoneLedger, clock: Callable[[], datetime],
    ) -> None:
        self.store, self.keyring, self.signer, self.catalog = store, keyring, signer, catalog
        self.limits, self.ledger, self.clock = limits, ledger, clock
        # Concurrent whole-subject shreds share one survey, one Vault signing call, one
        # transaction and one ledger append: a shred's cost is mostly those round trips.
        self._orders: Coalescer[_Order, list[ShredResult]] = Coalescer(
            lambda orders: self._shred(orders, None), self._disjoint_orders,
        )

    def shred_subjects(self, caller: Caller, subject_ids: list[str], reason: str) -> list[ShredResult]:
        """Destroy each subject's data for good, unless a legal hold blocks it (idempotent).

        Raises:
            InvalidInput: no reason, too many ids, or a malformed id (named by index).
            KeyUnavailable: Vault cannot sign the receipts; nothing was destroyed.
        """
        require_label("reason", reason, 1000)
        require_batch("subject_ids", len(subject_ids), self.limits)
        for i, subject_id in enumerate(subject_ids):
            if not is_subject_id(subject_id):
                raise InvalidInput(f"subject_ids[{i}]: malformed subject id")
        return self._orders.run(_Order(caller, list(dict.fromkeys(subject_ids)), reason))

    def _disjoint_orders(self, waiting: list[_Order]) -> int:
        """How many waiting orders one batch takes: a prefix naming no subject twice (so each
        order's outcome reads as if it ran alone) and within the batch limit."""
        seen: set[str] = set()
        for n, order in enumerate(waiting):
            if seen.intersection(order.subject_ids) or (n and len(seen) + len(order.subject_ids) > self.limits.max_batch_items):
                return n
            seen.update(order.subject_ids)
        return len(waiting)

    def shred_fields(self, caller: Caller, subject_id: str, fields: list[str], reason: str) -> ShredResult:
        """Destroy some fields of one subject (its DEK stays for the rest)."""
        require_label("reason", reason, 1000)
        if not is_subject_id(subject_id):
            raise InvalidInput("malformed subject id")
        if not fields:
            raise InvalidInput("fields is empty")
        for name in fields:
            try:
                self.catalog.field(name)
            except UnknownField as exc:
                raise InvalidInput(str(exc)) from None
        ((result,),) = self._shred([_Order(caller, [subject_id], reason)], sorted(set(fields)))
        return result

    def dispose(
        self, caller: Caller, subject_ids: list[str], fields: list[str] | None, expired_by: datetime, reason: str,
        before_destroy: Callable[[Tx, list[str]], None] | None = None,
    ) -> list[ShredResult]:
        """Retention disposal through the shred mechanism: holds, receipts, tombstones.

        Destroys only values whose expiry is at or before `expired_by`. With `fields`, those
        fields' expired values (their subjects keep their DEK); with None, whole subjects, but
        only those holding no unexpired value when the destroying transaction runs (others
        come back as "kept"). `before_destroy(tx, targets)` runs in that same transaction
        first (de-identification writes what it keeps there, so it commits with the shred).
        """
        require_label("reason", reason, 1000)
        (results,) = self._shred([_Order(caller, list(dict.fromkeys(subject_ids)), reason)],
                                 sorted(set(fields)) if fields else None, expired_by, before_destroy)
        return results

    def _shred(self, orders: list[_Order], fields: list[str] | None, expired_by: datetime | None = None,
               before_destroy: Callable[[Tx, list[str]], None] | None = None) -> list[list[ShredResult]]:
        """Shred for every order at once; the orders name disjoint subjects. One result list per order."""
        subject_ids = [s for order in orders for s in order.subject_ids]
        order_of = {s: order for order in orders for s in order.subject_ids}
        # Vault signs outside the write lock: survey on a snapshot, sign, then destroy in a
        # transaction that first checks the survey still holds (else survey again).
        for _ in range(ATTEMPTS):
            now = self.clock()
            with self.store.snapshot() as tx:
                survey = _Survey.take(tx, subject_ids, fields, expired_by)
            receipts = [
                _receipt(s, fields, now, order_of[s].caller.principal, order_of[s].reason, survey.counts.get(s, 0),
                         0 if fields else len(survey.kek_versions.get(s, [])), sorted(set(survey.kek_versions.get(s, []))))
                for s in survey.targets
            ]
            signatures = self.signer.sign([r.encode() for r in receipts]) if receipts else []
            with self.store.transaction() as tx:
                if _Survey.take(tx, subject_ids, fields, expired_by) != survey:
                    continue  # a concurrent hold, shred or tokenize changed what the receipts say
                if before_destroy is not None and survey.targets:
                    before_destroy(tx, survey.targets)
                self._destroy(tx, order_of, subject_ids, fields, survey, receipts, signatures, now, expired_by)
            break
        else:
            raise Conflict("the subjects kept changing during the shred; retry it")
        holds, earlier, existing, targets = survey.holds, survey.earlier, survey.existing, survey.targets
        if fields is None:  # DEK versions of a subject are 1..n
            self.keyring.evict((s, v) for s in targets for v in range(1, len(survey.kek_versions.get(s, [])) + 1))
        signed = dict(zip(targets, zip(receipts, signatures)))
        self.ledger.append([signed[s] for s in targets])
        results = {}
        for s in subject_ids:
            status = _status(s, existing, holds, earlier, targets)
            receipt, signature = signed.get(s) or earlier.get(s) or ("", "")
            results[s] = ShredResult(s, status, tuple(holds.get(s, ())), receipt, signature)
        log.info("shred: %d order(s), %d destroyed, %d held, %d already, %d unknown", len(orders), len(targets),
                 sum(1 for s in subject_ids if s in holds), sum(1 for s in subject_ids if s in earlier and s not in existing),
                 sum(1 for r in results.values() if r.status == "not_found"))
        return [[results[s] for s in order.subject_ids] for order in orders]

    @staticmethod
    def _destroy(tx: Tx, order_of: dict[str, _Order], subject_ids: list[str], fields: list[str] | None, survey: "_Survey",
                 receipts: list[str], signatures: list[str], now: datetime, expired_by: datetime | None = None) -> None:
        targets = survey.targets
        if fields is None:
            db.destroy_subjects(tx, targets)
        else:
            for s in targets:
                db.destroy_fields(tx, s, fields, expired_by)
        _scrub_answers(tx, targets, fields)
        db.add_tombstones(tx, [
            {"subject_id": s, "fields": ",".join(fields) if fields else None, "shredded_at": now,
             "receipt": r, "signature": sig}
            for s, r, sig in zip(targets, receipts, signatures)
        ])
        tx.log_access([
            access_row(now, order_of[s].caller, "shred", "disposal",
                       _status(s, survey.existing, survey.holds, survey.earlier, targets), s,
                       ",".join(fields) if fields else None)
            for s in subject_ids
        ])

    def place_hold(self, caller: Caller, subject_id: str, case_id: str, reason: str) -> bool:
        """Block every disposal of the subject until the case's hold is released."""
        require_label("case_id", case_id)
        require_label("reason", reason, 1000)
        if not is_subject_id(subject_id):
            raise InvalidInput("malformed subject id")
        now = self.clock()
        with self.store.transaction() as tx:
            if not db.existing_subjects(tx, [subject_id]):
                raise NotFound("unknown subject_id")
            placed = db.place_hold(tx, subject_id, case_id, reason, caller.principal, now)
            tx.log_access([access_row(now, caller, "hold", "legal_hold", "placed" if placed else "already_held", subject_id)])
        return placed

    def release_hold(self, caller: Caller, subject_id: str, case_id: str) -> int:
        require_label("case_id", case_id)
        if not is_subject_id(subject_id):
            raise InvalidInput("malformed subject id")
        now = self.clock()
        with self.store.transaction() as tx:
            released = db.release_hold(tx, subject_id, case_id, caller.principal, now)
            tx.log_access([access_row(now, caller, "release_hold", "legal_hold", "released" if released else "no_hold", subject_id)])
        return released

    def verify_receipt(self, receipt: str, signature: str) -> bool:
        """True only if Vault's signing key signed exactly this receipt text."""
        try:
            json.loads(receipt)
        except ValueError:
            return False
        return self.signer.verify(receipt.encode(), signature)

    def reapply_ledger(self) -> int:
        """Destroy again any subject the ledger says was shredded but the database still holds
        (a database restored from an older copy). Only entries whose signature verifies count."""
        entries = self.ledger.entries()
        if not entries:
            return 0
        with self.store.snapshot() as tx:
            alive = db.existing_subjects(tx, sorted({e[0] for e in entries}))
        revived = [(s, r, sig) for s, r, sig in entries if s in alive and self.signer.verify(r.encode(), sig)]
        if not revived:
            return 0
        with self.store.transaction() as tx:
            ids = sorted({s for s, _, _ in revived})
            db.destroy_subjects(tx, ids)
            _scrub_answers(tx, ids, None)
            known = db.subject_tombstones(tx, ids)
            db.add_tombstones(tx, [
                {"subject_id": s, "fields": None, "shredded_at": datetime.fromisoformat(json.loads(r)["shredded_at"]),
                 "receipt": r, "signature": sig}
                for s, r, sig in revived if s not in known
            ])
        # Runs at start, before any DEK is cached: nothing to evict.
        log.warning("re-applied %d shred(s) from the tombstone ledger (database restored from an older copy?)", len(ids))
        return len(ids)


@dataclass(frozen=True)
class _Survey:
    """What a shred is about to destroy: everything its receipts state."""

    holds: dict[str, list[str]]
    earlier: dict[str, tuple[str, str]]
    existing: set[str]
    targets: list[str]
    kek_versions: dict[str, list[int]]
    counts: dict[str, int]

    @classmethod
    def take(cls, tx: Tx, subject_ids: list[str], fields: list[str] | None,
             expired_by: datetime | None = None) -> "_Survey":
        holds = db.active_holds(tx, subject_ids)
        existing = db.existing_subjects(tx, subject_ids)
        targets = [s for s in subject_ids if s in existing and s not in holds]
        counts = db.value_counts(tx, targets, fields, expired_by)
        if expired_by is not None:  # disposal: only what expired, and only if anything did
            live = db.subjects_with_live_values(tx, targets, expired_by) if fields is None else set()
            targets = [s for s in targets if s not in live and (fields is None or counts.get(s))]
        return cls(
            holds, db.subject_tombstones(tx, subject_ids), existing, targets,
            {s: sorted(v) for s, v in db.subject_keys(tx, targets).items()}, counts,
        )


def _scrub_answers(tx: Tx, subject_ids: list[str], fields: list[str] | None) -> None:
    """Take shredded subjects (or fields) out of the stored tokenize answers a retry replays."""
    if not subject_ids:
        return
    gone = set(subject_ids)
    answers = {
        key: TokenizeOutcome.from_json(response).without(gone, fields).to_json()
        for key, response in db.answers_naming(tx, subject_ids).items()
    }
    db.replace_answers(tx, answers, subject_ids if fields is None else [])


def _status(subject_id: str, existing: set[str], holds: dict, earlier: dict, targets: list[str]) -> str:
    if subject_id in holds and subject_id in existing:
        return "on_hold"
    if subject_id in targets:
        return "shredded"
    if subject_id in existing and subject_id not in earlier:
        return "kept"  # only a disposal leaves an existing, unheld subject alone: nothing expired
    return "already_shredded" if subject_id in earlier else "not_found"


def _receipt(subject_id: str, fields: list[str] | None, now: datetime, actor: str, reason: str,
             values: int, keys: int, kek_versions: list[int]) -> str:
    """Canonical JSON (sorted keys, no spaces): the exact bytes Vault signs."""
    return json.dumps({
        "type": RECEIPT_TYPE, "subject_id": subject_id, "fields": fields, "shredded_at": now.isoformat(),
        "actor": actor, "reason": reason, "values_destroyed": values, "data_keys_destroyed": keys,
        "kek_versions": kek_versions, "backups": BACKUPS,
    }, sort_keys=True, separators=(",", ":"))
