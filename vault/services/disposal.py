"""Retention disposal: shred, or de-identify where the catalog says so, every expired value.

Expired values are found in pages on the expiry index (keyset pagination), a page's subjects
at a time, and destroyed through ShredService's disposal path, so holds, signed receipts and
tombstones work exactly as for a shred (DESIGN §6: one mechanism). A subject none of whose
values is still live is shredded whole, so its DEK goes too. Each destroying transaction is
atomic and only touches what has expired, so an interrupted run is resumed by running again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from vault.catalog import Catalog, FieldSpec, TokenKind
from vault.crypto import tokens as tk
from vault.crypto.aead import row_aad
from vault.crypto.index import blind_index
from vault.services.common import Caller
from vault.services.index_keys import IndexKeys
from vault.services.keyring import KeyRing
from vault.services.periodic import PeriodicJob
from vault.services.shred import ShredService
from vault.storage import disposal as db
from vault.storage import lifecycle
from vault.storage.store import Store, Tx

log = logging.getLogger("pdv.disposal")

PRINCIPAL = "pdv-disposal"
REASON = "retention period expired"


@dataclass
class DisposalReport:
    """What a run did (or, dry, would do). Ids, counts and case ids only, never a value."""

    now: str
    dry_run: bool
    values_disposed: dict[str, int] = field(default_factory=dict)  # per field, shredded or de-identified
    values_deidentified: dict[str, int] = field(default_factory=dict)
    subjects_shredded: int = 0
    subjects_with_fields_shredded: int = 0
    receipts: int = 0
    held: dict[str, list[str]] = field(default_factory=dict)  # subject id → case ids of its holds
    values_held: int = 0
    answers_pruned: int = 0  # tokenize answers kept for retries, past their retention
    requests_deleted: int = 0  # closed privacy requests past request_retention_days

    def to_json(self) -> dict:
        return {
            "now": self.now, "dry_run": self.dry_run,
            "values_disposed": dict(sorted(self.values_disposed.items())),
            "values_deidentified": dict(sorted(self.values_deidentified.items())),
            "total_disposed": sum(self.values_disposed.values()),
            "subjects_shredded": self.subjects_shredded,
            "subjects_with_fields_shredded": self.subjects_with_fields_shredded,
            "receipts": self.receipts,
            "subjects_held": len(self.held), "values_held": self.values_held,
            "held": {s: cases for s, cases in sorted(self.held.items())},
            "answers_pruned": self.answers_pruned,
            "requests_deleted": self.requests_deleted,
        }


class DisposalService:
    def __init__(
        self, store: Store, keyring: KeyRing, shredder: ShredService, catalog: Catalog, index_keys: IndexKeys,
        clock: Callable[[], datetime], batch_size: int = 500, answer_retention: timedelta = timedelta(days=7),
        closed_requests: Callable[[datetime, bool], int] | None = None,
    ) -> None:
        self.store, self.keyring, self.shredder, self.catalog = store, keyring, shredder, catalog
        self.index_keys, self.clock, self.batch_size = index_keys, clock, batch_size
        self.answer_retention = answer_retention
        # RequestService.dispose_closed: closed privacy requests past their retention go too.
        self.closed_requests = closed_requests

    def dispose(
        self, now: datetime | None = None, dry_run: bool = False,
        on_total: Callable[[int], None] | None = None, on_progress: Callable[[int], None] | None = None,
    ) -> DisposalReport:
        """Dispose of every value expired at `now` (default: the clock) unless its subject is held.

        Args:
            dry_run: survey only; the report says what a real run would dispose of.
            on_total: called once with the number of expired values found.
            on_progress: called with the number of expired values handled after each batch.
        Raises:
            KeyUnavailable, StoreUnavailable: a dependency is down; batches already done stay done.
        """
        now = (now or self.clock()).astimezone(timezone.utc)
        report = DisposalReport(now.isoformat(), dry_run)
        caller = Caller(PRINCIPAL, f"dispose-{uuid.uuid4().hex}")
        with self.store.snapshot() as tx:
            total = db.count_expired(tx, now)
        if on_total is not None:
            on_total(total)
        cursor: db.Cursor | None = None
        seen: set[str] = set()
        while True:
            with self.store.snapshot() as tx:
                page = db.expired_page(tx, now, cursor, self.batch_size)
            if not page:
                break
            cursor = (page[-1][1], page[-1][2])
            subjects = [s for s in dict.fromkeys(row[0] for row in page) if s not in seen]
            seen.update(subjects)
            if subjects:
                handled = self._batch(caller, subjects, now, dry_run, report)
                if on_progress is not None:
                    on_progress(handled)
        report.answers_pruned = self._prune_answers(now - self.answer_retention, dry_run)
        if self.closed_requests is not None:
            report.requests_deleted = self.closed_requests(now, dry_run)
        log.info("disposal%s: %d value(s) disposed, %d subject(s) shredded, %d receipt(s), %d subject(s) held, "
                 "%d stored tokenize answer(s) pruned", " (dry run)" if dry_run else "",
                 sum(report.values_disposed.values()), report.subjects_shredded, report.receipts, len(report.held),
                 report.answers_pruned)
        return report

    def _prune_answers(self, before: datetime, dry_run: bool) -> int:
        """Drop the tokenize answers kept for retries once past their retention (a retry after
        that is a new request), a batch per transaction."""
        if dry_run:
            with self.store.snapshot() as tx:
                return db.count_old_answers(tx, before)
        pruned = 0
        while True:
            with self.store.transaction() as tx:
                keys = db.old_answers(tx, before, self.batch_size)
                db.delete_answers(tx, keys)
            pruned += len(keys)
            if len(keys) < self.batch_size:
                return pruned

    def _batch(self, caller: Caller, subjects: list[str], now: datetime, dry_run: bool, report: DisposalReport) -> int:
        with self.store.snapshot() as tx:
            values = db.expired_values(tx, subjects, now)
            holds = lifecycle.active_holds(tx, subjects)
            live = db.subjects_with_live_values(tx, subjects, now)
        by_subject: dict[str, list[db.ExpiredValue]] = {}
        for v in values:
            by_subject.setdefault(v.subject_id, []).append(v)
        for s, cases in holds.items():
            if s in by_subject:
                report.held[s] = cases
                report.values_held += len(by_subject.pop(s))
        if dry_run:
            for s, vs in by_subject.items():
                self._count(report, vs, whole=s not in live)
            return len(values)
        kept = self._deidentify([v for vs in by_subject.values() for v in vs], now)

        def keep(tx: Tx, targets: list[str]) -> set[str]:
            db.add_deidentified(tx, [row for s in targets for row in kept.get(s, [])])
            return {s for s in targets if kept.get(s)}

        whole = [s for s in by_subject if s not in live]
        partial = [s for s in by_subject if s in live]
        if whole:
            for result in self.shredder.dispose(caller, whole, None, now, REASON, keep):
                if result.status == "kept":  # a live value arrived meanwhile: dispose field by field
                    partial.append(result.subject_id)
                else:
                    self._settle(report, result, by_subject[result.subject_id], whole=True)
        groups: dict[tuple[str, ...], list[str]] = {}
        for s in partial:
            groups.setdefault(tuple(sorted({v.field for v in by_subject[s]})), []).append(s)
        for fields, group in groups.items():
            for result in self.shredder.dispose(caller, group, list(fields), now, REASON, keep):
                self._settle(report, result, by_subject[result.subject_id], whole=False)
        return len(values)

    def _settle(self, report: DisposalReport, result, values: list[db.ExpiredValue], whole: bool) -> None:  # type: ignore[no-untyped-def]
        if result.status == "on_hold":  # placed after our survey; the shred path caught it
            report.held[result.subject_id] = list(result.hold_case_ids)
            report.values_held += len(values)
        elif result.status == "shredded":
            report.receipts += 1
            self._count(report, values, whole)

    def _count(self, report: DisposalReport, values: list[db.ExpiredValue], whole: bool) -> None:
        if whole:
            report.subjects_shredded += 1
        else:
            report.subjects_with_fields_shredded += 1
        for v in values:
            report.values_disposed[v.field] = report.values_disposed.get(v.field, 0) + 1
            if self._spec(v.field).on_expiry == "deidentify":
                report.values_deidentified[v.field] = report.values_deidentified.get(v.field, 0) + 1

    def _spec(self, name: str) -> FieldSpec:
        return self.catalog.field(name)

    def kept_of(self, values: list[db.ExpiredValue], disposed_at: datetime) -> dict[str, list[dict]]:
        """What de-identification keeps of these values (rows per subject), as the run at
        `disposed_at` kept it; a ledger replay after a restore writes it again, in the
        transaction that destroys the values again (vault.services.lifecycle.replay).

        Raises:
            KeyUnavailable: Vault cannot unwrap the subjects' keys.
        """
        return self._deidentify(values, disposed_at)

    def _deidentify(self, values: list[db.ExpiredValue], now: datetime) -> dict[str, list[dict]]:
        """What de-identification keeps of each subject's expired values (rows, per subject)."""
        wanted = [v for v in values if v.field in self.catalog and self._spec(v.field).on_expiry == "deidentify"]
        if not wanted:
            return {}
        with self.store.snapshot() as tx:
            wrapped = db.wrapped_keys(tx, sorted({v.subject_id for v in wanted}))
        keys = self.keyring.data_keys({(v.subject_id, v.key_version): wrapped[(v.subject_id, v.key_version)]
                                       for v in wanted if (v.subject_id, v.key_version) in wrapped})
        out: dict[str, list[dict]] = {}
        for v in wanted:
            key = keys.get((v.subject_id, v.key_version))
            if key is None:
                continue  # shredded meanwhile: nothing to keep
            plain = key.open(v.ciphertext, row_aad(v.subject_id, v.field, v.token, v.key_version)).decode()
            spec = self._spec(v.field)
            out.setdefault(v.subject_id, []).append({
                "field": v.field, "kept": spec.deidentify_keep, "value": self._kept(spec, v.token, plain),
                "purpose": v.purpose, "disposed_at": now,
            })
        return out

    def _kept(self, spec: FieldSpec, token: str, value: str) -> str:
        if spec.deidentify_keep == "year":
            return value[:4]
        if spec.deidentify_keep == "zip3":
            return value[:3]
        if spec.token_kind is TokenKind.DETERMINISTIC and tk.is_opaque_token(token):
            return token  # partner systems already hold it: their records still join
        return blind_index(self.index_keys.pseudonym_key(spec.name), value).hex()


class DisposalJob(PeriodicJob[DisposalReport]):
    """Runs the disposal service every `interval` seconds, on one replica at a time (db.disposal_lock)."""

    name = "disposal"

    def __init__(self, service: DisposalService, interval: float) -> None:
        super().__init__(interval, log)
        self.service = service
        # For the metrics: expired values still stored (as of this replica's last round, live
        # during one), and the last report.
        self.backlog = 0
        self.last_report: DisposalReport | None = None

    def run_once(self) -> DisposalReport | None:
        """One run if no other replica holds the lock; None if one does."""
        with db.disposal_lock(self.service.store) as mine:
            if not mine:
                log.info("disposal: another replica is running it; skipped")
                return None

            def found(total: int) -> None:
                self.backlog = total

            def handled(count: int) -> None:
                self.backlog = max(0, self.backlog - count)

            report = self.service.dispose(on_total=found, on_progress=handled)
            self.backlog = report.values_held if not report.dry_run else self.backlog
            self.last_report = report
            return report
