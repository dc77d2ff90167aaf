"""pdv.v1.AccessReport from the access report the rights service builds."""

from __future__ import annotations

from datetime import datetime, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from pdv.v1 import subject_pb2 as pb

from vault.policy import MASKED, PLAIN
from vault.services.rights.report_model import AccessReport, ReportValue

_VIEWS = {PLAIN: pb.VALUE_VIEW_PLAIN, MASKED: pb.VALUE_VIEW_MASKED, None: pb.VALUE_VIEW_UNSPECIFIED}
_VERIFIED = {True: pb.VERIFICATION_VERIFIED, False: pb.VERIFICATION_FAILED, None: pb.VERIFICATION_UNSPECIFIED}


def timestamp(at: datetime | None) -> Timestamp | None:
    if at is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc))  # SQLite reads back naive UTC
    return stamp


def report_message(r: AccessReport) -> pb.AccessReport:
    return pb.AccessReport(
        subject_id=r.subject_id, generated_at=timestamp(r.generated_at), generated_by=r.generated_by,
        case_id=r.case_id or "", values_requested=r.values_requested,
        values=[_value(v) for v in r.values],
        accesses=[pb.AccessRecord(
            entry_id=a.entry_id, at=timestamp(a.at), principal=a.principal, partner_agreement=a.partner_agreement or "",
            action=a.action, action_text=a.action_text, field=a.field or "", field_label=a.field_label or "",
            purpose=a.purpose, purpose_label=a.purpose_label, outcome=a.outcome, outcome_text=a.outcome_text,
            verification=_VERIFIED[a.verified]) for a in r.accesses],
        destroyed=[pb.Destruction(
            at=timestamp(d.at), kind=d.kind, fields=d.fields, field_labels=d.field_labels, reason=d.reason,
            actor=d.actor, values_destroyed=d.values_destroyed, receipt=d.receipt, signature=d.signature)
            for d in r.destroyed],
        consent=[pb.ConsentState(purpose=c.purpose, purpose_label=c.purpose_label, opted_out=c.opted_out,
                                 since=timestamp(c.since)) for c in r.consent],
        holds=[pb.HoldRecord(case_id=h.case_id, reason=h.reason, placed_at=timestamp(h.placed_at), placed_by=h.placed_by,
                             released_at=timestamp(h.released_at)) for h in r.holds],
        entries_cited=r.entries_cited, entries_verified=r.entries_verified, entries_failed=r.entries_failed,
        verification_method=r.verification_method,
        holders=[pb.TokenHolder(
            principal=h.principal, domain=h.domain, description=h.description,
            partner_agreement=h.partner_agreement or "", first_issued_at=timestamp(h.first_issued_at),
            last_issued_at=timestamp(h.last_issued_at)) for h in r.holders],
    )


def _value(v: ReportValue) -> pb.HeldValue:
    message = pb.HeldValue(
        field=v.field, field_label=v.field_label, category=v.category, purpose=v.purpose,
        purpose_label=v.purpose_label, source=v.source, collected_at=timestamp(v.collected_at),
        notice_id=v.notice_id or "", expires_at=timestamp(v.expires_at), retention_rule=v.retention_rule,
        on_expiry=v.on_expiry, token_masked=v.token_masked, view=_VIEWS[v.view], value=v.value or "",
        on_hold=v.on_hold,
        corrections=[pb.Correction(
            field=v.field, purpose=v.purpose, token=c.token_masked, corrected_at=timestamp(c.corrected_at),
            corrected_by=c.corrected_by, reason=c.reason, case_id=c.case_id or "", request_id=c.request_id,
            old_value_fingerprint=c.old_value_fingerprint) for c in v.corrections],
    )
    if v.notice_given is not None:
        message.notice_given = v.notice_given
    return message
