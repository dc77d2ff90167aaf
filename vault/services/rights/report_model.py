"""What a subject access report holds (vault/services/rights/report.py builds it; the API
turns it into pdv.v1.AccessReport). Names and rules only, and values only where the caller
asked for them and may see them; tokens appear masked."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vault.storage.report import HoldRow


@dataclass(frozen=True, slots=True)
class ReportCorrection:
    corrected_at: datetime
    corrected_by: str
    reason: str
    case_id: str | None
    request_id: str
    token_masked: str
    old_value_fingerprint: str  # hex HMAC of the old value, never the value


@dataclass(frozen=True, slots=True)
class ReportValue:
    field: str
    field_label: str
    category: str
    purpose: str
    purpose_label: str
    source: str
    collected_at: datetime
    notice_given: bool | None  # None: collected before PDV recorded it
    notice_id: str | None
    expires_at: datetime
    retention_rule: str
    on_expiry: str
    token_masked: str
    view: str | None  # PLAIN, MASKED or None (not shown)
    value: str | None
    on_hold: bool
    corrections: list[ReportCorrection] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReportAccess:
    entry_id: int
    at: datetime
    principal: str
    partner_agreement: str | None
    action: str
    action_text: str
    field: str | None
    field_label: str | None
    purpose: str
    purpose_label: str
    outcome: str
    outcome_text: str
    verified: bool | None  # None: not checked


@dataclass(frozen=True, slots=True)
class ReportDestruction:
    at: datetime
    kind: str  # "shred" or "disposal"
    fields: list[str]  # empty: the whole subject
    field_labels: list[str]
    reason: str
    actor: str
    values_destroyed: int
    receipt: str
    signature: str


@dataclass(frozen=True, slots=True)
class ReportConsent:
    purpose: str
    purpose_label: str
    opted_out: bool
    since: datetime | None


@dataclass(frozen=True, slots=True)
class ReportHolder:
    """A principal that was handed tokens of the subject (the issuance ledger), and who it is."""

    principal: str
    domain: str
    description: str  # the policy's words for it; "" where the policy gives none
    partner_agreement: str | None  # None: not a partner
    first_issued_at: datetime
    last_issued_at: datetime


@dataclass(frozen=True, slots=True)
class AccessReport:
    subject_id: str
    generated_at: datetime
    generated_by: str
    case_id: str | None
    values_requested: bool
    values: list[ReportValue]
    accesses: list[ReportAccess]
    destroyed: list[ReportDestruction]
    consent: list[ReportConsent]
    holds: list[HoldRow]  # as stored: case, reason, placed at / by, released at
    entries_cited: int
    entries_verified: int
    entries_failed: int
    verification_method: str
    holders: list[ReportHolder] = field(default_factory=list)
