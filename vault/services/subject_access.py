"""Who may use SubjectService: each call judged against the scope of the caller's grants,
and every refusal written to the access log.

`admin_principals` (server config) is an unscoped override: a principal named there may
make every call below. Anyone else needs a policy grant covering what the call touches:

- ShredFields: `shred` on each named field;
- ShredSubjects, PlaceHold, ReleaseHold: `shred` on every catalog field, since they act on
  (or block the disposal of) whole subjects;
- VerifyReceipt: `shred` on the fields the receipt names, every field for a whole subject;
- SetConsent: `admin` for its purpose on every catalog field (an opt-out covers all of a
  subject's fields); GetConsent: that for at least one purpose, and it is shown only the
  opt-outs of the purposes so granted;
- GetAccessReport: for purpose `subject_access`, on every catalog field, `export` (the value
  may be shown plain) or a detokenize grant (shown masked): the report covers a whole person,
  so a narrower grant would make a report that leaves things out (and only grants naming
  subject_access count: vault/policy.py). `admin_principals` may make the report, but see
  values only where such a grant shows them;
- CorrectValue: `correct` on the field for every purpose the catalog lets it be collected
  for (a correction replaces the value whatever it was collected for); ListCorrections:
  that on at least one field, and it is shown only the history of the fields so granted.

SubjectService requests carry no purpose, so a `shred` grant counts only where it names
every purpose; `pdv policy check` warns about one that does not. The decision depends on
the caller and the request only, never on what is stored: it is made before any read.

A refusal is logged with outcome "denied" in a transaction of its own, then raised as
PermissionDenied: one entry per subject named for ShredSubjects (as a shred logs them),
one entry for any other call. Subject ids are logged only when well formed, and a
ShredSubjects batch is held to the batch limit first, so a refused call cannot write more
entries than an allowed one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime

from vault.catalog import Catalog
from vault.errors import PermissionDenied, UnknownField
from vault.policy import CORRECT, DETOKENIZE, DETOKENIZE_MASKED, EXPORT, MASKED, PLAIN, SUBJECT_ACCESS
from vault.services.access import DENIED, AccessControl, undeclared_purpose
from vault.services.common import Caller, Limits, access_row, require_batch
from vault.services.tokenize_model import is_subject_id
from vault.storage.store import Store

OVERRIDE = "or a place in admin_principals"


class SubjectAccess:
    """The policy in force and the `admin_principals` override, asked once per SubjectService call."""

    def __init__(
        self, access: AccessControl, admin_principals: Iterable[str], store: Store, catalog: Catalog, limits: Limits,
        clock: Callable[[], datetime],
    ) -> None:
        self.access, self.store, self.catalog, self.limits, self.clock = access, store, catalog, limits, clock
        self.admins = frozenset(admin_principals)

    def shred_subjects(self, caller: Caller, subject_ids: list[str]) -> None:
        """Allow a whole-subject shred, or log the refusal and raise PermissionDenied.

        Raises:
            InvalidInput: no subject ids, or more than the batch limit.
        """
        require_batch("subject_ids", len(subject_ids), self.limits)
        if not self._may_shred(caller, self.catalog.names):
            ids = [s for s in dict.fromkeys(subject_ids) if is_subject_id(s)] or [None]
            self._refuse(caller, [("shred", "disposal", s, None) for s in ids],
                         f"not permitted to shred whole subjects: that needs a shred grant on every field "
                         f"for every purpose, {OVERRIDE}")

    def shred_fields(self, caller: Caller, subject_id: str, fields: list[str]) -> None:
        """Allow a shred of `fields`, or log the refusal and raise PermissionDenied.

        Raises:
            InvalidInput: a field is not in the catalog (named).
        """
        for name in fields:
            if name not in self.catalog:
                raise UnknownField(name)  # its message shows the name only if it is shaped like one
        missing = [f for f in sorted(set(fields)) if not self._may_shred(caller, (f,))]
        if missing:
            self._refuse(caller, [("shred", "disposal", _subject(subject_id), ",".join(sorted(set(fields))) or None)],
                         f"not permitted to shred field {missing[0]!r}: that needs a shred grant on it for every "
                         f"purpose, {OVERRIDE}")

    def hold(self, caller: Caller, action: str, subject_id: str) -> None:
        """Allow placing (`action` "hold") or releasing ("release_hold") a legal hold."""
        if not self._may_shred(caller, self.catalog.names):
            self._refuse(caller, [(action, "legal_hold", _subject(subject_id), None)],
                         f"not permitted to place or release legal holds: that needs a shred grant on every "
                         f"field for every purpose, {OVERRIDE}")

    def verify_receipt(self, caller: Caller, receipt: str) -> None:
        """Allow checking a receipt: `shred` on the fields it names (all for a whole subject).
        An unreadable receipt is judged as a whole-subject one; it then verifies as false."""
        subject, fields = _receipt_scope(receipt, self.catalog)
        if not self._may_shred(caller, fields or self.catalog.names):
            self._refuse(caller, [("verify_receipt", "disposal", subject, ",".join(fields) if fields else None)],
                         f"not permitted to verify this receipt: that needs a shred grant on the fields it names "
                         f"(every field for a whole subject) for every purpose, {OVERRIDE}")

    def set_consent(self, caller: Caller, subject_id: str, purpose: str) -> None:
        """Allow changing consent for `purpose`. Raises InvalidInput (listing the declared purposes) for an undeclared one."""
        if purpose not in self.catalog.purposes:
            raise undeclared_purpose(self.catalog)
        if caller.principal not in self.admins and purpose not in self._consent_purposes(caller):
            self._refuse(caller, [("consent", purpose, _subject(subject_id), None)],
                         f"not permitted to change consent for purpose {purpose!r}: that needs an admin grant for "
                         f"it on every field, {OVERRIDE}")

    def consent_report(self, caller: Caller, subject_id: str) -> frozenset[str] | None:
        """The purposes whose opt-outs the caller may see (None: all), or log and raise."""
        if caller.principal in self.admins:
            return None
        purposes = self._consent_purposes(caller)
        if not purposes:
            self._refuse(caller, [("consent", "consent_report", _subject(subject_id), None)],
                         f"not permitted to read consent: that needs an admin grant for a purpose on every "
                         f"field, {OVERRIDE}")
        return purposes

    def correct(self, caller: Caller, subject_id: str, field: str) -> None:
        """Allow correcting `field`, or log the refusal and raise PermissionDenied.

        Raises:
            InvalidInput: the field is not in the catalog (named).
        """
        if field not in self.catalog:
            raise UnknownField(field)  # its message shows the name only if it is shaped like one
        if not self._may_correct(caller, field):
            self._refuse(caller, [("correct", "correction", _subject(subject_id), field)],
                         f"not permitted to correct field {field!r}: that needs a correct grant on it for every "
                         f"purpose it may be collected for, {OVERRIDE}")

    def corrections_report(self, caller: Caller, subject_id: str) -> list[str]:
        """The fields whose correction history the caller may see, or log the refusal and raise."""
        fields = [f for f in self.catalog.names if self._may_correct(caller, f)]
        if not fields:
            self._refuse(caller, [("correct", "correction_report", _subject(subject_id), None)],
                         f"not permitted to read corrections: that needs a correct grant on a field for every "
                         f"purpose it may be collected for, {OVERRIDE}")
        return fields

    def access_report(self, caller: Caller, subject_id: str) -> dict[str, str | None]:
        """Allow an access report, or log the refusal and raise PermissionDenied.

        Returns:
            Field -> how its values may be shown when values are asked for: PLAIN (an `export`
            grant for subject_access), MASKED (a detokenize grant for it) or None.
        """
        views = {f: self._report_view(caller, f) for f in self.catalog.names}
        if caller.principal not in self.admins and not all(views.values()):
            self._refuse(caller, [("access_report", SUBJECT_ACCESS, _subject(subject_id), None)],
                         f"not permitted to make an access report: that needs, for purpose {SUBJECT_ACCESS}, an "
                         f"export or detokenize grant on every field, {OVERRIDE}")
        return views

    def _report_view(self, caller: Caller, field: str) -> str | None:
        policy, today, who = self.access.policy, self.access.today(), caller.principal
        if policy.allows(who, EXPORT, field, SUBJECT_ACCESS, today):
            return PLAIN
        if any(policy.allows(who, a, field, SUBJECT_ACCESS, today) for a in (DETOKENIZE, DETOKENIZE_MASKED)):
            return MASKED
        return None

    def _may_correct(self, caller: Caller, field: str) -> bool:
        return caller.principal in self.admins or self.access.policy.covers(
            caller.principal, CORRECT, (field,), self.catalog.field(field).purposes, self.access.today())

    def _may_shred(self, caller: Caller, fields: Iterable[str]) -> bool:
        return caller.principal in self.admins or self.access.may_shred(caller.principal, fields)

    def _consent_purposes(self, caller: Caller) -> frozenset[str]:
        return self.access.consent_purposes(caller.principal)

    def _refuse(self, caller: Caller, rows: list[tuple[str, str, str | None, str | None]], message: str) -> None:
        now = self.clock()
        with self.store.transaction() as tx:
            tx.log_access([access_row(now, caller, action, purpose, DENIED, subject, field)
                           for action, purpose, subject, field in rows])
        raise PermissionDenied(message)


def _subject(subject_id: str) -> str | None:
    return subject_id if is_subject_id(subject_id) else None


def _receipt_scope(receipt: str, catalog: Catalog) -> tuple[str | None, list[str] | None]:
    """The subject and fields a receipt names (fields None: the whole subject, or unreadable)."""
    try:
        body = json.loads(receipt)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(body, dict):
        return None, None
    subject, fields = body.get("subject_id"), body.get("fields")
    subject = subject if isinstance(subject, str) and is_subject_id(subject) else None
    # A receipt naming a field the catalog lacks is judged as a whole-subject one.
    if isinstance(fields, list) and fields and all(isinstance(f, str) and f in catalog for f in fields):
        return subject, sorted(set(fields))
    return subject, None
