"""The subject access report: a resident's right to understand and see what the city holds
about them and who used it.

`access_report` gathers, for one subject:
- every value held: field, category, the purpose and source it was collected under, when,
  whether a collection notice was given (and its id), when it expires and the retention rule
  behind that, whether a legal hold blocks its disposal, its corrections, its token masked;
- consent per purpose, and legal holds (current and released);
- every access-log entry about the subject, read through the per-subject index
  (`access_subjects`), in plain words, each checked against its chain up to the next
  Vault-signed checkpoint (vault/services/audit_cited.py);
- every shred and disposal, with its signed receipt;
- every principal that was handed tokens of the subject (the issuance ledger, token_holders),
  with who it is in the policy's words and, for a partner, its agreement.

Values are read only when asked for, and then per field as SubjectAccess.access_report
decided: plain under an `export` grant for purpose subject_access, masked under a detokenize
grant for it, else not at all. The report is itself an access: one access-log entry for the
report (its case id in the token column, as request operations log theirs) and one per value
shown, written in one transaction before anything is returned; with a case id, the report is
linked to that open privacy request in the same transaction (links.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from vault.catalog import Catalog, FieldSpec
from vault.crypto.aead import row_aad
from vault.errors import AnswerTooLarge, InvalidInput, NotFound, UnknownField
from vault.policy import MASKED, PLAIN, SUBJECT_ACCESS
from vault.keys.provider import Signer
from vault.services.access import AccessControl
from vault.services.audit import CheckpointFile
from vault.services.audit_cited import CitedCheck, verify_cited
from vault.services.common import Caller, access_row
from vault.services.index_keys import IndexKeys
from vault.services.keyring import KeyRing
from vault.services.rights.links import link, require_open_case
from vault.services.rights.report_model import (
    AccessReport, ReportAccess, ReportConsent, ReportCorrection, ReportDestruction, ReportHolder, ReportValue,
)
from vault.services.rights.report_words import LOG_PURPOSES, action_text, mask_token, outcome_text, period_text
from vault.services.tokenize_model import is_subject_id, require_subject_id
from vault.storage import corrections as corrections_db
from vault.storage import holders as holders_db
from vault.storage import report as db
from vault.storage.audit_log import AuditRepository, Entry, subject_items
from vault.storage.store import Store

ACTION = "access_report"
METHOD = ("each cited entry's MAC recomputed from its chain predecessor's, and the chain from it to the next "
          "Vault-signed checkpoint (pdv audit verify checks the whole log, deletions included)")
_KEEP_WORDS = {"year": "the year", "zip3": "the first three digits", "pseudonym": "a code for counting, not the value"}


class ReportService:
    def __init__(
        self, store: Store, audit: AuditRepository, keyring: KeyRing, index_keys: IndexKeys, catalog: Catalog,
        access: AccessControl, signer: Signer, sink: CheckpointFile, clock: Callable[[], datetime],
        max_answer_bytes: int = 4 * 1024 * 1024, checkpoint: Callable[[], bool] | None = None,
    ) -> None:
        self.store, self.audit, self.keyring, self.index_keys = store, audit, keyring, index_keys
        self.signer, self.sink, self.checkpoint = signer, sink, checkpoint
        self.catalog, self.access, self.clock, self.max_answer_bytes = catalog, access, clock, max_answer_bytes

    def access_report(
        self, caller: Caller, subject_id: str, views: dict[str, str | None], case_id: str | None = None,
        include_values: bool = False, answer_bytes: Callable[[AccessReport], int] | None = None,
    ) -> AccessReport:
        """Everything held about `subject_id` and every access to it (see the module docstring).

        The caller must already have been allowed by SubjectAccess.access_report, whose
        answer `views` is.

        Raises:
            InvalidInput: malformed subject id or case id.
            NotFound: PDV never held data of this subject, or `case_id` names no open
                privacy request; nothing is returned (the attempt is logged).
            AnswerTooLarge: `answer_bytes` (the size of the answer as sent) says the report would
                not fit in one message (max_answer_bytes); logged "too_large", nothing returned.
            KeyUnavailable, StoreUnavailable: a dependency is down; nothing was returned.
        """
        try:
            require_subject_id(subject_id)
            if case_id:
                with self.store.snapshot() as tx:
                    require_open_case(tx, case_id)
        except InvalidInput:
            self._log_failure(caller, subject_id if is_subject_id(subject_id) else None, "invalid")
            raise
        except NotFound:
            self._log_failure(caller, subject_id, "no_open_case")
            raise
        with self.store.snapshot() as tx:  # one consistent view of everything held
            known = db.subject_known(tx, subject_id)
            held = db.held_values(tx, subject_id) if known else []
            holds = db.holds_of(tx, subject_id) if known else []
            opt_outs = {o.purpose: o.set_at for o in db.opt_outs_of(tx, subject_id)} if known else {}
            tombstones = db.tombstones_of(tx, subject_id) if known else []
            history = corrections_db.history_of_subject(tx, subject_id) if known else []
            holders = holders_db.holders_of(tx, subject_id) if known else []
        if not known:
            self._log_failure(caller, subject_id, "not_found")
            raise NotFound("PDV holds and has held no data of this subject")
        rows = {row.id: row for row in self.audit.subject_rows(subject_id)}
        entries = [e for row in rows.values() for e in subject_items(row, subject_id)]
        if self.checkpoint is not None:
            self.checkpoint()  # this process's newest entries get a signed checkpoint to be checked against
        verified = verify_cited(self.audit, self.index_keys.audit_key, self.signer, self.sink, list(rows), rows)
        shown = self._values(subject_id, held, views) if include_values else {}
        on_hold = any(h.released_at is None for h in holds)
        values = [self._value(v, shown.get(v.id), on_hold, [h for h in history if h.value_id == v.id]) for v in held]
        now = self.clock()
        accesses = [self._access(e, _state(verified.get(e.id))) for e in entries]
        report = AccessReport(
            subject_id, now, caller.principal, case_id, include_values, values,
            accesses,
            [self._destruction(t) for t in tombstones],
            [ReportConsent(p, self.catalog.describe_purpose(p), p in opt_outs, opt_outs.get(p))
             for p in sorted(self.catalog.purposes) if p != SUBJECT_ACCESS],
            holds,
            len(accesses), sum(1 for a in accesses if a.verified is True), sum(1 for a in accesses if a.verified is False),
            METHOD,
            [self._holder(h) for h in holders],
        )
        # Measured before the access is logged as made: a report that cannot be sent is refused,
        # not logged as delivered and then lost on the wire.
        if answer_bytes is not None and answer_bytes(report) > self.max_answer_bytes:
            self._log_failure(caller, subject_id, "too_large")
            raise AnswerTooLarge(f"the report is larger than the {self.max_answer_bytes}-byte message limit "
                                 "(max_message_bytes); raise it for this subject's report")
        with self.store.transaction() as tx:
            if case_id:
                require_open_case(tx, case_id)  # again: it may have closed since
            rows = [access_row(now, caller, ACTION, SUBJECT_ACCESS, "ok", subject_id, None, case_id)]
            rows += [access_row(now, caller, ACTION, SUBJECT_ACCESS, shown[v.id][0], subject_id, v.field, v.token)
                     for v in held if v.id in shown]
            tx.log_access(rows)
            if case_id:
                link(tx, case_id, now, caller, ACTION, [(subject_id, "with_values" if shown else "reported")])
        return report

    # --- steps ---------------------------------------------------------------------
    def _values(self, subject_id: str, held: list[db.HeldRow], views: dict[str, str | None]) -> dict[int, tuple[str, str]]:
        """Value id -> (view, the value as shown), for the values the caller may see."""
        wanted = [v for v in held if views.get(v.field) in (PLAIN, MASKED) and v.field in self.catalog]
        if not wanted:
            return {}
        keys = self.keyring.data_keys({(subject_id, v.key_version): v.wrapped for v in wanted})  # one batched Vault call
        out = {}
        for v in wanted:
            plain = keys[(subject_id, v.key_version)].open(v.ciphertext, row_aad(subject_id, v.field, v.token,
                                                                                 v.key_version)).decode()
            view = views[v.field]
            out[v.id] = (view, plain if view == PLAIN else self.catalog.field(v.field).masked(plain))
        return out

    def _value(self, v: db.HeldRow, shown: tuple[str, str] | None, on_hold: bool,
               history: list[corrections_db.CorrectionRow]) -> ReportValue:
        spec = self.catalog.field(v.field) if v.field in self.catalog else None
        return ReportValue(
            v.field, self._field_label(v.field), spec.classification if spec else "", v.purpose,
            self._purpose_label(v.purpose), v.source, v.collected_at, v.notice_given, v.notice_id, v.expires_at,
            _retention_rule(spec, v.purpose, self._purpose_label(v.purpose)), _on_expiry(spec), mask_token(v.token),
            shown[0] if shown else None, shown[1] if shown else None, on_hold,
            [ReportCorrection(h.corrected_at, h.corrected_by, h.reason, h.case_id, h.request_id, mask_token(h.token),
                              h.old_fingerprint.hex()) for h in history],
        )

    def _access(self, e: Entry, verified: bool | None) -> ReportAccess:
        _, principal, action, purpose, _, field, _, outcome = e.fields
        partner = self.access.policy.partners.get(principal or "")
        return ReportAccess(
            e.id, e.at, principal or "", partner.agreement if partner else None, action or "", action_text(action or ""),
            field, self._field_label(field) if field else None, purpose or "", self._purpose_label(purpose or ""),
            outcome or "", outcome_text(outcome or ""), verified,
        )

    def _holder(self, h: holders_db.Holder) -> ReportHolder:
        policy = self.access.policy
        partner = policy.partners.get(h.principal)
        return ReportHolder(h.principal, h.domain, policy.descriptions.get(h.principal, ""),
                            partner.agreement if partner else None, h.first_issued_at, h.last_issued_at)

    def _destruction(self, t: db.TombstoneRow) -> ReportDestruction:
        try:
            body = json.loads(t.receipt)
        except ValueError:
            body = {}
        fields = t.fields.split(",") if t.fields else []
        return ReportDestruction(
            t.shredded_at, "disposal" if body.get("expired_by") else "shred", fields,
            [self._field_label(f) for f in fields], str(body.get("reason", "")), str(body.get("actor", "")),
            int(body.get("values_destroyed", 0) or 0), t.receipt, t.signature,
        )

    def _field_label(self, name: str) -> str:
        try:
            return self.catalog.field(name).plain_name
        except UnknownField:
            return name.replace("_", " ")

    def _purpose_label(self, purpose: str) -> str:
        if purpose in self.catalog.purposes:
            return self.catalog.describe_purpose(purpose)
        return LOG_PURPOSES.get(purpose) or purpose.replace("_", " ")

    def _log_failure(self, caller: Caller, subject_id: str | None, outcome: str) -> None:
        now = self.clock()
        with self.store.transaction() as tx:
            tx.log_access([access_row(now, caller, ACTION, SUBJECT_ACCESS, outcome, subject_id)])


def _retention_rule(spec: FieldSpec | None, purpose: str, purpose_label: str) -> str:
    if spec is None:
        return "the field is no longer in the catalog"
    overrides = dict(spec.retention_by_purpose)
    if purpose in overrides:
        return f"{period_text(overrides[purpose])} after collection, the rule for {purpose_label}"
    return f"{period_text(spec.retention)} after collection, the rule for this field"


def _on_expiry(spec: FieldSpec | None) -> str:
    if spec is None or spec.on_expiry != "deidentify":
        return "destroyed"
    return f"de-identified: only {_KEEP_WORDS.get(spec.deidentify_keep or '', 'a summary')} is kept, not linked to you"


def _state(check: CitedCheck | None) -> bool | None:
    """Verified, failed, or None: not checked, or not yet covered by a signed checkpoint."""
    return None if check is None or check.pending else check.ok
