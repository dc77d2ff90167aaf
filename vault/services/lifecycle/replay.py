"""Replaying the tombstone ledger into a database restored from an older copy.

The ledger (vault.services.ledger) holds one signed receipt per subject and shred, written
outside the database. Its receipts the database has no tombstone for were cut off by a
restore; each is re-applied as it was done, and only if its signature verifies:

- a whole-subject shred destroys the subject (values, keys, index rows) again;
- a field shred destroys the subject's values of those fields collected by the shred's
  time: a value collected later (the subject kept its DEK) was not part of it;
- a retention disposal (its receipt names `expired_by`) destroys only the values collected
  by then and expired by `expired_by`; where the catalog de-identifies the field, what
  de-identification keeps is written again in the same transaction, for exactly the values
  destroyed, so a replay never duplicates a kept aggregate (a database that has the kept
  rows has the tombstone too: both committed in one transaction).

Receipts the database has and the ledger lacks (a crash between the commit and the ledger
append) are appended to the ledger.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from vault.keys.provider import Signer
from vault.services.common import Caller, access_row
from vault.services.disposal import PRINCIPAL as DISPOSAL_PRINCIPAL
from vault.services.ledger import LedgerEntry, TombstoneLedger
from vault.services.shred_steps import receipt_id, scrub_answers, shred_kind
from vault.storage import events
from vault.storage import lifecycle as db
from vault.storage.event_kinds import SHREDDED
from vault.storage import restore as restore_db
from vault.storage.disposal import ExpiredValue, add_deidentified
from vault.storage.store import Store, Tx

log = logging.getLogger("pdv.ledger")

PRINCIPAL = "pdv-restore"
CHUNK = 1000  # receipts per query or transaction (SQLite allows 32,766 parameters)

# What de-identification keeps of some values (DisposalService.kept_of): rows per subject.
KeptOf = Callable[[list[ExpiredValue], datetime], dict[str, list[dict]]]


@dataclass
class ReplayReport:
    appended: int = 0  # receipts the ledger lacked, appended from the database
    subjects_shredded: int = 0  # whole-subject receipts re-applied
    fields_shredded: int = 0  # field and disposal receipts re-applied (subjects kept their DEK)
    values_destroyed: int = 0
    values_deidentified: int = 0
    bad_signatures: int = 0  # receipts not re-applied: their signature does not verify

    @property
    def reapplied(self) -> int:
        return self.subjects_shredded + self.fields_shredded

    def to_json(self) -> dict:
        return {"receipts_appended_to_ledger": self.appended, "subjects_shredded_again": self.subjects_shredded,
                "field_shreds_reapplied": self.fields_shredded, "values_destroyed_again": self.values_destroyed,
                "values_deidentified_again": self.values_deidentified,
                "receipts_with_bad_signatures": self.bad_signatures}


class LedgerReplay:
    def __init__(self, store: Store, signer: Signer, ledger: TombstoneLedger, clock: Callable[[], datetime],
                 kept_of: KeptOf | None = None) -> None:
        self.store, self.signer, self.ledger, self.clock, self.kept_of = store, signer, ledger, clock, kept_of
        self.done = ReplayReport()  # every run of this process, added up (the one at start included)

    def run(self) -> ReplayReport:
        """Make the ledger and the database agree on every shred (see the module docstring).

        Raises:
            KeyUnavailable: Vault cannot verify a receipt or unwrap a key to de-identify.
        """
        report = ReplayReport()
        if self.ledger.path is None:
            return report
        entries = self.ledger.entries()
        with self.store.snapshot() as tx:
            tombstones = restore_db.tombstone_keys(tx)
        in_ledger = {e.key for e in entries}
        missing = sorted(i for key, i in tombstones.items() if key not in in_ledger)
        for start in range(0, len(missing), CHUNK):
            with self.store.snapshot() as tx:
                receipts = restore_db.tombstone_receipts(tx, missing[start:start + CHUNK])
            if self.ledger.append(receipts):
                report.appended += len(receipts)
        if report.appended:
            log.warning("added %d shred receipt(s) to the tombstone ledger that an interrupted run had left out",
                        report.appended)
        cut_off = [_dated(e) for e in dict((e.key, e) for e in entries).values() if e.key not in tombstones]
        caller = Caller(PRINCIPAL, f"replay-{uuid.uuid4().hex}")
        plain = [e for e in cut_off if e.fields is None and e.expired_by is None]
        for start in range(0, len(plain), CHUNK):
            self._subjects(caller, plain[start:start + CHUNK], report)
        for entry in cut_off:
            if entry.fields is not None or entry.expired_by is not None:
                self._values(caller, entry, report)
        if report.reapplied:
            # At start nothing is cached yet; `pdv restore reconcile` runs in its own process, and
            # reads never trust a cached DEK without its row.
            log.warning("re-applied %d shred(s) from the tombstone ledger (%d whole subject(s), %d value(s)); "
                        "the database was restored from an older copy", report.reapplied, report.subjects_shredded,
                        report.values_destroyed)
        if report.bad_signatures:
            log.error("%d tombstone ledger receipt(s) the database lacks have an invalid signature: not re-applied",
                      report.bad_signatures)
        for name, value in vars(report).items():
            setattr(self.done, name, getattr(self.done, name) + value)
        self.done.bad_signatures = report.bad_signatures  # the same receipts again, not new ones
        return report

    def _verified(self, entries: list[LedgerEntry], report: ReplayReport) -> list[LedgerEntry]:
        good = [e for e in entries if self.signer.verify(e.receipt.encode(), e.signature)]
        report.bad_signatures += len(entries) - len(good)
        return good

    def _subjects(self, caller: Caller, entries: list[LedgerEntry], report: ReplayReport) -> None:
        """Whole-subject shreds: the subjects still there are destroyed again, in one transaction."""
        with self.store.snapshot() as tx:
            alive = db.existing_subjects(tx, sorted({e.subject_id for e in entries}))
        revived = self._verified([e for e in entries if e.subject_id in alive], report)
        if not revived:
            return
        now = self.clock()
        with self.store.transaction() as tx:
            ids = sorted(db.existing_subjects(tx, sorted({e.subject_id for e in revived})))
            report.values_destroyed += sum(db.value_counts(tx, ids).values())
            for e in revived:  # the holders' events, as the shred wrote them (written once: same receipt id)
                if e.subject_id in ids:
                    events.record(tx, events.Change(SHREDDED, e.shredded_at, {e.subject_id: receipt_id(e.receipt)}))
            db.destroy_subjects(tx, ids)
            scrub_answers(tx, ids, None)
            self._record(tx, now, caller, revived)
        report.subjects_shredded += len(ids)

    def _values(self, caller: Caller, entry: LedgerEntry, report: ReplayReport) -> None:
        """A field shred or a disposal: exactly the values it destroyed, and what it kept of them."""
        with self.store.snapshot() as tx:
            values = restore_db.values_destroyed_by(tx, entry.subject_id, entry.fields, entry.shredded_at,
                                                    entry.expired_by)
        if not values or not self._verified([entry], report):
            return
        kept: dict[int, list[dict]] = {}  # value id -> what de-identification keeps of it
        if entry.expired_by is not None and self.kept_of is not None:
            for v in values:  # one value at a time, to know which row each kept row stands for
                kept[v.id] = self.kept_of([v], entry.expired_by).get(entry.subject_id, [])
        now = self.clock()
        with self.store.transaction() as tx:
            whole = entry.fields is None and entry.expired_by is not None and not db.subjects_with_live_values(
                tx, [entry.subject_id], entry.expired_by)
            destroyed = [v.id for v in restore_db.values_destroyed_by(
                tx, entry.subject_id, None, entry.shredded_at, entry.expired_by)] if whole else [v.id for v in values]
            kind = shred_kind(entry.fields, entry.expired_by, any(kept.get(i) for i in destroyed))
            events.record(tx, events.Change(kind, entry.shredded_at, {entry.subject_id: receipt_id(entry.receipt)},
                                            entry.fields, value_ids=destroyed))
            if whole:  # a whole-subject disposal: nothing live was left, so its DEK goes too
                gone = set(destroyed)
                db.destroy_subjects(tx, [entry.subject_id])
            else:
                gone = restore_db.destroy_values(tx, entry.subject_id, [v.id for v in values])
            rows = [row for value_id in sorted(gone) for row in kept.get(value_id, [])]
            add_deidentified(tx, rows)
            scrub_answers(tx, [entry.subject_id], None if whole else {v.field for v in values if v.id in gone})
            self._record(tx, now, caller, [entry])
        report.values_destroyed += len(gone)
        report.values_deidentified += len(rows)
        if whole:
            report.subjects_shredded += 1
        else:
            report.fields_shredded += 1

    @staticmethod
    def _record(tx: Tx, now: datetime, caller: Caller, entries: list[LedgerEntry]) -> None:
        """The tombstones the restore cut off, and an access-log entry per re-applied receipt."""
        db.add_tombstones(tx, [
            {"subject_id": e.subject_id, "fields": e.key[1], "shredded_at": e.shredded_at, "receipt": e.receipt,
             "signature": e.signature} for e in entries
        ])
        tx.log_access([access_row(now, caller, "shred", "restore", "reapplied", e.subject_id, e.key[1])
                       for e in entries])


def _dated(entry: LedgerEntry) -> LedgerEntry:
    """A disposal receipt written before receipts named `expired_by`: the run disposed of what
    had expired by its own clock (only dry runs take another time), which read the time a few
    seconds at most before it signed; a value expiring in between goes at the next run anyway."""
    if entry.expired_by is None and entry.actor == DISPOSAL_PRINCIPAL:
        return replace(entry, expired_by=entry.shredded_at)
    return entry
