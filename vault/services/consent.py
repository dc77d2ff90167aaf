"""Consent: a resident's opt-outs by purpose, set by a records officer, enforced on reads.

Each change is written with its access-log row (action "consent", outcome "opt_out" or
"opt_in") in one transaction; detokenize and lookup read the opt-outs in their own unit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from vault.catalog import Catalog
from vault.errors import NotFound
from vault.services.access import undeclared_purpose
from vault.services.common import MAX_PURPOSE, Caller, access_row, change_ref, require_label
from vault.services.rights.links import link, require_open_case
from vault.services.tokenize_model import require_subject_id
from vault.storage import events
from vault.storage.consent import opt_outs_of, set_opt_out, subject_exists
from vault.storage.event_kinds import CONSENT_GIVEN, CONSENT_WITHDRAWN
from vault.storage.store import Store


class ConsentService:
    def __init__(self, store: Store, catalog: Catalog, clock: Callable[[], datetime]) -> None:
        self.store, self.catalog, self.clock = store, catalog, clock

    def set_consent(self, caller: Caller, subject_id: str, purpose: str, opted_out: bool,
                    case_id: str | None = None) -> bool:
        """Opt `subject_id` out of (or back into) `purpose`; True if that changed anything.
        With `case_id`, the change is linked to that open privacy request in the same transaction.

        Raises:
            InvalidInput: malformed subject id or case id, or a purpose the catalog does not declare.
            NotFound: no such subject, or `case_id` names no open privacy request.
        """
        self._check(subject_id, purpose)
        now = self.clock()
        with self.store.transaction() as tx:
            if not subject_exists(tx, subject_id):
                raise NotFound("unknown subject_id")
            if case_id:
                require_open_case(tx, case_id)
            changed = set_opt_out(tx, subject_id, purpose, opted_out, caller.principal, now)
            outcome = "opt_out" if opted_out else "opt_in"
            if changed:
                events.record(tx, events.Change(CONSENT_WITHDRAWN if opted_out else CONSENT_GIVEN, now,
                                                {subject_id: change_ref(caller, now)}, purpose=purpose))
            tx.log_access([access_row(now, caller, "consent", purpose, outcome, subject_id)])
            if case_id:
                link(tx, case_id, now, caller, "consent", [(subject_id, outcome if changed else "unchanged")], purpose)
        return changed

    def opt_outs(self, caller: Caller, subject_id: str, visible: frozenset[str] | None = None) -> list[str]:
        """The purposes `subject_id` opted out of, among `visible` ones (None: all); the read is logged.

        Raises:
            InvalidInput, NotFound: as set_consent.
        """
        self._check(subject_id, None)
        now = self.clock()
        with self.store.transaction() as tx:
            if not subject_exists(tx, subject_id):
                raise NotFound("unknown subject_id")
            purposes = [p for p in opt_outs_of(tx, subject_id) if visible is None or p in visible]
            tx.log_access([access_row(now, caller, "consent", "consent_report", "ok", subject_id)])
        return purposes

    def _check(self, subject_id: str, purpose: str | None) -> None:
        require_subject_id(subject_id)
        if purpose is not None:
            require_label("purpose", purpose, MAX_PURPOSE)
            if purpose not in self.catalog.purposes:
                raise undeclared_purpose(self.catalog)
