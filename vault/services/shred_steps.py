"""The two steps of every shred, each done for many orders at once.

1. `prepare`: survey what the orders would destroy on a snapshot and have Vault sign a
   receipt for each subject (outside the write lock: Vault is a network round trip).
2. `commit`: in one transaction, survey again; an order whose survey still holds is carried
   out (values, keys, index rows destroyed; tombstones and access-log rows written), one
   whose survey changed is handed back to be prepared again, since its receipts would lie.

Whole-subject shreds from concurrent callers run each step through a Coalescer, so that
while one batch commits, the next is surveyed and signed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from vault.keys.provider import Signer
from vault.services.common import Caller, Limits, access_row
from vault.services.keyring import KeyRing
from vault.services.ledger import TombstoneLedger
from vault.services.rights.links import link
from vault.storage import events
from vault.storage import lifecycle as db
from vault.storage.event_kinds import DEIDENTIFIED, DISPOSED, FIELDS_SHREDDED, SHREDDED
from vault.storage.store import Store, Tx

log = logging.getLogger("pdv.shred")
T = TypeVar("T")
# Runs in a shred's transaction before it destroys anything (de-identification keeps what it
# keeps there); returns the subjects of which it kept something.
BeforeDestroy = Callable[[Tx, list[str]], Collection[str]]

RECEIPT_TYPE = "pdv.shred-receipt.v1"
BACKUPS = (
    "Database copies taken before this shred committed (shortly after shredded_at) still hold the wrapped "
    "data key. They become "
    "unrecoverable when Vault KEK versions up to kek_versions' highest are trimmed (pdv keys trim, "
    "after the backup horizon). Until then, restoring such a copy is caught by the tombstone ledger."
)


@dataclass(frozen=True)
class ShredResult:
    subject_id: str
    status: str  # shredded | already_shredded | on_hold | not_found | kept (disposal: nothing expired)
    hold_case_ids: tuple[str, ...] = ()
    receipt: str = ""
    signature: str = ""


@dataclass(frozen=True)
class Order:
    """One caller's shred: whose data (which fields; None for everything), by whom, why."""

    caller: Caller
    subject_ids: list[str]
    reason: str
    fields: list[str] | None = None
    expired_by: datetime | None = None  # disposal: only values expired by then
    case_id: str | None = None  # the privacy request it answers (checked open by ShredService)


@dataclass(frozen=True)
class Survey:
    """What a shred is about to destroy: everything its receipts state."""

    holds: dict[str, list[str]]
    earlier: dict[str, tuple[str, str]]
    existing: set[str]
    targets: list[str]
    kek_versions: dict[str, list[int]]
    counts: dict[str, int]

    @classmethod
    def take(cls, tx: Tx, subject_ids: list[str], fields: list[str] | None,
             expired_by: datetime | None = None) -> "Survey":
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

    def of(self, subject_ids: list[str]) -> "Survey":
        """The part of this survey about `subject_ids` (every entry is about one subject)."""
        keep = set(subject_ids)
        return Survey(
            {s: v for s, v in self.holds.items() if s in keep}, {s: v for s, v in self.earlier.items() if s in keep},
            self.existing & keep, [s for s in self.targets if s in keep],
            {s: v for s, v in self.kek_versions.items() if s in keep}, {s: v for s, v in self.counts.items() if s in keep},
        )

    def status(self, subject_id: str) -> str:
        if subject_id in self.holds and subject_id in self.existing:
            return "on_hold"
        if subject_id in self.targets:
            return "shredded"
        if subject_id in self.existing and subject_id not in self.earlier:
            return "kept"  # only a disposal leaves an existing, unheld subject alone: nothing expired
        return "already_shredded" if subject_id in self.earlier else "not_found"


@dataclass(frozen=True)
class Signed:
    """An order surveyed and its receipts signed, ready to commit."""

    order: Order
    survey: Survey
    receipts: dict[str, tuple[str, str]]  # target subject -> (receipt, signature)
    at: datetime


def disjoint(limits: Limits, subjects: Callable[[T], list[str]]) -> Callable[[list[T]], int]:
    """A Coalescer `take`: a prefix of the waiting items naming no subject twice (so each order
    reads as if it ran alone) and within the batch limit."""
    def take(waiting: list[T]) -> int:
        seen: set[str] = set()
        for n, item in enumerate(waiting):
            ids = subjects(item)
            if seen.intersection(ids) or (n and len(seen) + len(ids) > limits.max_batch_items):
                return n
            seen.update(ids)
        return len(waiting)
    return take


class ShredSteps:
    def __init__(self, store: Store, keyring: KeyRing, signer: Signer, ledger: TombstoneLedger,
                 clock: Callable[[], datetime]) -> None:
        self.store, self.keyring, self.signer, self.ledger, self.clock = store, keyring, signer, ledger, clock

    def prepare(self, orders: list[Order]) -> list[Signed]:
        """Survey and sign for orders naming disjoint subjects (the same fields and expiry).

        Raises:
            KeyUnavailable: Vault cannot sign; nothing was destroyed.
        """
        fields, expired_by = orders[0].fields, orders[0].expired_by
        order_of = {s: order for order in orders for s in order.subject_ids}
        now = self.clock()
        with self.store.snapshot() as tx:
            survey = Survey.take(tx, list(order_of), fields, expired_by)
        receipts = [
            _receipt(s, fields, now, order_of[s].caller.principal, order_of[s].reason, survey.counts.get(s, 0),
                     0 if fields else len(survey.kek_versions.get(s, [])), sorted(set(survey.kek_versions.get(s, []))),
                     expired_by)
            for s in survey.targets
        ]
        signatures = self.signer.sign([r.encode() for r in receipts]) if receipts else []
        signed = dict(zip(survey.targets, zip(receipts, signatures)))
        return [
            Signed(order, part, {s: signed[s] for s in part.targets}, now)
            for order in orders for part in (survey.of(order.subject_ids),)
        ]

    def commit(self, batch: list[Signed], before_destroy: BeforeDestroy | None = None
               ) -> list[list[ShredResult] | None]:
        """Carry out every order whose survey still holds; None for the others (prepare again)."""
        fields, expired_by = batch[0].order.fields, batch[0].order.expired_by
        ids = [s for signed in batch for s in signed.order.subject_ids]
        with self.store.transaction() as tx:
            current = Survey.take(tx, ids, fields, expired_by)
            fresh = [signed for signed in batch if current.of(signed.order.subject_ids) == signed.survey]
            targets = [s for signed in fresh for s in signed.survey.targets]
            kept = before_destroy(tx, targets) if before_destroy is not None and targets else None
            tell_holders(tx, fresh, fields, expired_by, set(kept or ()))
            _destroy(tx, fresh, targets, fields, expired_by)
        if fields is None:  # DEK versions of a subject are 1..n
            self.keyring.evict(
                (s, v) for signed in fresh for s in signed.survey.targets
                for v in range(1, len(signed.survey.kek_versions.get(s, [])) + 1)
            )
        self.ledger.append([signed.receipts[s] for signed in fresh for s in signed.survey.targets])
        results = {id(signed): _results(signed) for signed in fresh}
        log.info("shred: %d order(s) committed, %d to survey again, %d subject(s) destroyed",
                 len(fresh), len(batch) - len(fresh), len(targets))
        return [results.get(id(signed)) for signed in batch]


def tell_holders(tx: Tx, fresh: list[Signed], fields: list[str] | None, expired_by: datetime | None,
                 deidentified: Collection[str] = ()) -> None:
    """The events to the holders of the subjects about to be destroyed (before: they read the
    tokens); `deidentified`: the subjects of which a de-identified form was kept."""
    for signed in fresh:
        for kept in (False, True):
            refs = {s: receipt_id(receipt) for s, (receipt, _) in signed.receipts.items() if (s in deidentified) == kept}
            if refs:
                events.record(tx, events.Change(shred_kind(fields, expired_by, kept), signed.at, refs, fields, expired_by))


def shred_kind(fields: Collection[str] | None, expired_by: datetime | None, deidentified: bool = False) -> str:
    if expired_by is not None:
        return DEIDENTIFIED if deidentified else DISPOSED
    return SHREDDED if fields is None else FIELDS_SHREDDED


def receipt_id(receipt: str) -> str:
    """What an event names a shred by: the SHA-256 of its signed receipt (hex), the same on a replay."""
    return hashlib.sha256(receipt.encode()).hexdigest()


def _destroy(tx: Tx, fresh: list[Signed], targets: list[str], fields: list[str] | None,
             expired_by: datetime | None) -> None:
    if fields is None:
        db.destroy_subjects(tx, targets)
    else:
        for s in targets:
            db.destroy_fields(tx, s, fields, expired_by)
    scrub_answers(tx, targets, fields)
    db.add_tombstones(tx, [
        {"subject_id": s, "fields": ",".join(fields) if fields else None, "shredded_at": signed.at,
         "receipt": receipt, "signature": signature}
        for signed in fresh for s, (receipt, signature) in signed.receipts.items()
    ])
    tx.log_access([
        access_row(signed.at, signed.order.caller, "shred", "disposal", signed.survey.status(s), s,
                   ",".join(fields) if fields else None)
        for signed in fresh for s in signed.order.subject_ids
    ])
    for signed in fresh:
        if signed.order.case_id is not None:
            link(tx, signed.order.case_id, signed.at, signed.order.caller, "shred_fields" if fields else "shred",
                 [(s, signed.survey.status(s)) for s in signed.order.subject_ids], ",".join(fields) if fields else None)


def _results(signed: Signed) -> list[ShredResult]:
    survey = signed.survey
    return [
        ShredResult(s, survey.status(s), tuple(survey.holds.get(s, ())),
                    *(signed.receipts.get(s) or survey.earlier.get(s) or ("", "")))
        for s in signed.order.subject_ids
    ]


def scrub_answers(tx: Tx, subject_ids: list[str], fields: Collection[str] | None) -> None:
    """Take shredded subjects out of the tokenize answers kept for retries; after a field shred,
    the tokens of the values destroyed (only those: a subject may hold several values of a field)."""
    if not subject_ids:
        return
    if fields is None:
        db.forget_request_records(tx, subject_ids)
        return
    held = db.held_tokens(tx, subject_ids)
    changed = []
    for principal, request_id, position, subject_id, tokens in db.request_records_of(tx, subject_ids):
        stored = json.loads(tokens)
        kept = {f: tok for f, tok in stored.items() if f not in fields or (subject_id, f, tok) in held}
        if kept != stored:
            changed.append((principal, request_id, position, json.dumps(kept)))
    db.set_request_record_tokens(tx, changed)


def _receipt(subject_id: str, fields: list[str] | None, now: datetime, actor: str, reason: str,
             values: int, keys: int, kek_versions: list[int], expired_by: datetime | None = None) -> str:
    """Canonical JSON (sorted keys, no spaces): the exact bytes Vault signs. A disposal's receipt
    names its `expired_by`, so a replay after a restore destroys exactly the values that had
    expired then (vault.services.lifecycle.replay)."""
    body = {
        "type": RECEIPT_TYPE, "subject_id": subject_id, "fields": fields, "shredded_at": now.isoformat(),
        "actor": actor, "reason": reason, "values_destroyed": values, "data_keys_destroyed": keys,
        "kek_versions": kek_versions, "backups": BACKUPS,
    }
    if expired_by is not None:
        body["expired_by"] = expired_by.isoformat()
    return json.dumps(body, sort_keys=True, separators=(",", ":"))
