"""Crypto-shredding and legal holds.

A shred deletes a subject's wrapped DEKs, ciphertexts and blind indexes in one
transaction, with a tombstone and a receipt signed by Vault (signed before the
commit: if Vault cannot sign, nothing is destroyed). With the DEK gone, every copy
of the ciphertexts is noise; database backups taken earlier hold the wrapped DEK
until the KEK versions that wrapped it are trimmed, and the receipt says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from vault.catalog import Catalog
from vault.errors import Conflict, InvalidInput, NotFound
from vault.keys.provider import Signer
from vault.services.coalescer import Coalescer
from vault.services.common import (
    MAX_REASON, Caller, Limits, access_row, change_ref, refusals_logged, require_batch, require_label,
)
from vault.services.keyring import KeyRing
from vault.services.ledger import TombstoneLedger
from vault.services.rights.links import link, names_request, require_open_case
from vault.services.shred_steps import BeforeDestroy, Order, ShredResult, ShredSteps, Signed, disjoint
from vault.services.tokenize_model import is_subject_id, require_subject_id
from vault.storage import events
from vault.storage import lifecycle as db
from vault.storage.event_kinds import HOLD_PLACED, HOLD_RELEASED
from vault.storage.store import Store, Tx

ATTEMPTS = 3


class ShredService:
    def __init__(
        self, store: Store, keyring: KeyRing, signer: Signer, catalog: Catalog, limits: Limits,
        ledger: TombstoneLedger, clock: Callable[[], datetime],
    ) -> None:
        self.store, self.keyring, self.signer, self.catalog = store, keyring, signer, catalog
        self.limits, self.ledger, self.clock = limits, ledger, clock
        self._steps = ShredSteps(store, keyring, signer, ledger, clock)
        # Concurrent whole-subject shreds share each step: one survey and one Vault signing
        # call for all the orders waiting to be prepared, one transaction and one ledger
        # append for all those waiting to commit, and the two steps overlap.
        self._preparing: Coalescer[Order, Signed] = Coalescer(
            self._steps.prepare, disjoint(limits, lambda order: order.subject_ids))
        self._committing: Coalescer[Signed, list[ShredResult] | None] = Coalescer(
            self._steps.commit, disjoint(limits, lambda signed: signed.order.subject_ids))

    def shred_subjects(self, caller: Caller, subject_ids: list[str], reason: str,
                       case_id: str | None = None) -> list[ShredResult]:
        """Destroy each subject's data for good, unless a legal hold blocks it (idempotent).
        With `case_id`, the shred is linked to that open privacy request (in its transaction).

        Raises:
            InvalidInput: no reason, too many ids, or a malformed id (named by index) or case id.
            NotFound: `case_id` names no open privacy request; nothing was destroyed.
            KeyUnavailable: Vault cannot sign the receipts; nothing was destroyed.
        """
        with refusals_logged(self._in_transaction, self.clock(), caller, "shred", "disposal"):
            require_label("reason", reason, MAX_REASON)
            require_batch("subject_ids", len(subject_ids), self.limits)
            for i, subject_id in enumerate(subject_ids):
                if not is_subject_id(subject_id):
                    raise InvalidInput(f"subject_ids[{i}]: malformed subject id", f"subject_ids[{i}]")
            self._require_case(case_id)
        order = Order(caller, list(dict.fromkeys(subject_ids)), reason, case_id=case_id)
        return self._carry_out(order, lambda o: self._committing.run(self._preparing.run(o)))

    def shred_fields(self, caller: Caller, subject_id: str, fields: list[str], reason: str,
                     case_id: str | None = None) -> ShredResult:
        """Destroy some fields of one subject (its DEK stays for the rest); `case_id` as for shred_subjects."""
        with refusals_logged(self._in_transaction, self.clock(), caller, "shred", "disposal"):
            require_label("reason", reason, MAX_REASON)
            require_subject_id(subject_id)
            if not fields:
                raise InvalidInput("fields is empty", "fields")
            for name in fields:
                self.catalog.field(name)  # UnknownField names it, if it is shaped like a field name
            self._require_case(case_id)
        (result,) = self._carry_out(Order(caller, [subject_id], reason, sorted(set(fields)), case_id=case_id),
                                    self._alone)
        return result

    def _require_case(self, case_id: str | None) -> None:
        # Checked before the shred is surveyed: a bad case id must not fail a coalesced batch.
        if case_id:
            with self.store.snapshot() as tx:
                require_open_case(tx, case_id)

    def dispose(
        self, caller: Caller, subject_ids: list[str], fields: list[str] | None, expired_by: datetime, reason: str,
        before_destroy: BeforeDestroy | None = None,
    ) -> list[ShredResult]:
        """Retention disposal through the shred mechanism: holds, receipts, tombstones.

        Destroys only values whose expiry is at or before `expired_by`. With `fields`, those
        fields' expired values (their subjects keep their DEK); with None, whole subjects, but
        only those holding no unexpired value when the destroying transaction runs (others
        come back as "kept"). `before_destroy(tx, targets)` runs in that same transaction
        first (de-identification writes what it keeps there, so it commits with the shred).
        """
        require_label("reason", reason, MAX_REASON)
        order = Order(caller, list(dict.fromkeys(subject_ids)), reason, sorted(set(fields)) if fields else None, expired_by)
        return self._carry_out(order, lambda o: self._alone(o, before_destroy))

    def _alone(self, order: Order, before_destroy: BeforeDestroy | None = None
               ) -> list[ShredResult] | None:
        (result,) = self._steps.commit(self._steps.prepare([order]), before_destroy)
        return result

    @staticmethod
    def _carry_out(order: Order, attempt: Callable[[Order], list[ShredResult] | None]) -> list[ShredResult]:
        for _ in range(ATTEMPTS):
            results = attempt(order)
            if results is not None:
                return results
            # else a concurrent hold, shred or tokenize changed what the receipts would say
        raise Conflict("the subjects kept changing during the shred; retry it")

    def place_hold(self, caller: Caller, subject_id: str, case_id: str, reason: str) -> bool:
        """Block every disposal of the subject until the case's hold is released."""
        now = self.clock()
        with refusals_logged(self._in_transaction, now, caller, "hold", "legal_hold"):
            require_label("case_id", case_id)
            require_label("reason", reason, MAX_REASON)
            require_subject_id(subject_id)
        with self.store.transaction() as tx:
            if not db.existing_subjects(tx, [subject_id]):
                raise NotFound("unknown subject_id")
            placed = db.place_hold(tx, subject_id, case_id, reason, caller.principal, now)
            outcome = "placed" if placed else "already_held"
            if placed:
                events.record(tx, events.Change(HOLD_PLACED, now, {subject_id: change_ref(caller, now)}))
            tx.log_access([access_row(now, caller, "hold", "legal_hold", outcome, subject_id)])
            if names_request(tx, case_id):  # a hold placed for a privacy request is one of its actions
                link(tx, case_id, now, caller, "hold", [(subject_id, outcome)])
        return placed

    def release_hold(self, caller: Caller, subject_id: str, case_id: str) -> int:
        now = self.clock()
        with refusals_logged(self._in_transaction, now, caller, "release_hold", "legal_hold"):
            require_label("case_id", case_id)
            require_subject_id(subject_id)
        with self.store.transaction() as tx:
            released = db.release_hold(tx, subject_id, case_id, caller.principal, now)
            outcome = "released" if released else "no_hold"
            if released:
                events.record(tx, events.Change(HOLD_RELEASED, now, {subject_id: change_ref(caller, now)}))
            tx.log_access([access_row(now, caller, "release_hold", "legal_hold", outcome, subject_id)])
            if names_request(tx, case_id):
                link(tx, case_id, now, caller, "release_hold", [(subject_id, outcome)])
        return released

    def _in_transaction(self, work: Callable[[Tx], object]) -> object:
        with self.store.transaction() as tx:
            return work(tx)

    def verify_receipt(self, receipt: str, signature: str) -> bool:
        """True only if Vault's signing key signed exactly this receipt text."""
        try:
            json.loads(receipt)
        except ValueError:
            return False
        return self.signer.verify(receipt.encode(), signature)
