import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ShredStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHRED_STATUS_UNSPECIFIED: _ClassVar[ShredStatus]
    SHRED_STATUS_SHREDDED: _ClassVar[ShredStatus]
    SHRED_STATUS_ALREADY_SHREDDED: _ClassVar[ShredStatus]
    SHRED_STATUS_ON_HOLD: _ClassVar[ShredStatus]
    SHRED_STATUS_NOT_FOUND: _ClassVar[ShredStatus]

class ValueView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALUE_VIEW_UNSPECIFIED: _ClassVar[ValueView]
    VALUE_VIEW_PLAIN: _ClassVar[ValueView]
    VALUE_VIEW_MASKED: _ClassVar[ValueView]

class Verification(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERIFICATION_UNSPECIFIED: _ClassVar[Verification]
    VERIFICATION_VERIFIED: _ClassVar[Verification]
    VERIFICATION_FAILED: _ClassVar[Verification]
SHRED_STATUS_UNSPECIFIED: ShredStatus
SHRED_STATUS_SHREDDED: ShredStatus
SHRED_STATUS_ALREADY_SHREDDED: ShredStatus
SHRED_STATUS_ON_HOLD: ShredStatus
SHRED_STATUS_NOT_FOUND: ShredStatus
VALUE_VIEW_UNSPECIFIED: ValueView
VALUE_VIEW_PLAIN: ValueView
VALUE_VIEW_MASKED: ValueView
VERIFICATION_UNSPECIFIED: Verification
VERIFICATION_VERIFIED: Verification
VERIFICATION_FAILED: Verification

class ShredSubjectsRequest(_message.Message):
    __slots__ = ("subject_ids", "reason", "case_id")
    SUBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    subject_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    case_id: str
    def __init__(self, subject_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., case_id: _Optional[str] = ...) -> None: ...

class ShredOutcome(_message.Message):
    __slots__ = ("subject_id", "status", "hold_case_ids", "receipt", "signature")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HOLD_CASE_IDS_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    status: ShredStatus
    hold_case_ids: _containers.RepeatedScalarFieldContainer[str]
    receipt: str
    signature: str
    def __init__(self, subject_id: _Optional[str] = ..., status: _Optional[_Union[ShredStatus, str]] = ..., hold_case_ids: _Optional[_Iterable[str]] = ..., receipt: _Optional[str] = ..., signature: _Optional[str] = ...) -> None: ...

class ShredSubjectsResponse(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[ShredOutcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[ShredOutcome, _Mapping]]] = ...) -> None: ...

class ShredFieldsRequest(_message.Message):
    __slots__ = ("subject_id", "fields", "reason", "case_id")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    case_id: str
    def __init__(self, subject_id: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., case_id: _Optional[str] = ...) -> None: ...

class ShredFieldsResponse(_message.Message):
    __slots__ = ("outcome",)
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    outcome: ShredOutcome
    def __init__(self, outcome: _Optional[_Union[ShredOutcome, _Mapping]] = ...) -> None: ...

class PlaceHoldRequest(_message.Message):
    __slots__ = ("subject_id", "case_id", "reason")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    case_id: str
    reason: str
    def __init__(self, subject_id: _Optional[str] = ..., case_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PlaceHoldResponse(_message.Message):
    __slots__ = ("placed",)
    PLACED_FIELD_NUMBER: _ClassVar[int]
    placed: bool
    def __init__(self, placed: _Optional[bool] = ...) -> None: ...

class ReleaseHoldRequest(_message.Message):
    __slots__ = ("subject_id", "case_id")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    case_id: str
    def __init__(self, subject_id: _Optional[str] = ..., case_id: _Optional[str] = ...) -> None: ...

class ReleaseHoldResponse(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: int
    def __init__(self, released: _Optional[int] = ...) -> None: ...

class VerifyReceiptRequest(_message.Message):
    __slots__ = ("receipt", "signature")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    receipt: str
    signature: str
    def __init__(self, receipt: _Optional[str] = ..., signature: _Optional[str] = ...) -> None: ...

class VerifyReceiptResponse(_message.Message):
    __slots__ = ("valid",)
    VALID_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    def __init__(self, valid: _Optional[bool] = ...) -> None: ...

class SetConsentRequest(_message.Message):
    __slots__ = ("subject_id", "purpose", "opted_out", "case_id")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    OPTED_OUT_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    purpose: str
    opted_out: bool
    case_id: str
    def __init__(self, subject_id: _Optional[str] = ..., purpose: _Optional[str] = ..., opted_out: _Optional[bool] = ..., case_id: _Optional[str] = ...) -> None: ...

class SetConsentResponse(_message.Message):
    __slots__ = ("changed",)
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    def __init__(self, changed: _Optional[bool] = ...) -> None: ...

class GetConsentRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class GetConsentResponse(_message.Message):
    __slots__ = ("opted_out_purposes",)
    OPTED_OUT_PURPOSES_FIELD_NUMBER: _ClassVar[int]
    opted_out_purposes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, opted_out_purposes: _Optional[_Iterable[str]] = ...) -> None: ...

class CorrectValueRequest(_message.Message):
    __slots__ = ("subject_id", "field", "new_value", "reason", "case_id", "request_id")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    field: str
    new_value: str
    reason: str
    case_id: str
    request_id: str
    def __init__(self, subject_id: _Optional[str] = ..., field: _Optional[str] = ..., new_value: _Optional[str] = ..., reason: _Optional[str] = ..., case_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CorrectedValue(_message.Message):
    __slots__ = ("purpose", "token", "token_changed")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_CHANGED_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    token: str
    token_changed: bool
    def __init__(self, purpose: _Optional[str] = ..., token: _Optional[str] = ..., token_changed: _Optional[bool] = ...) -> None: ...

class CorrectValueResponse(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[CorrectedValue]
    def __init__(self, values: _Optional[_Iterable[_Union[CorrectedValue, _Mapping]]] = ...) -> None: ...

class ListCorrectionsRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class Correction(_message.Message):
    __slots__ = ("field", "purpose", "token", "corrected_at", "corrected_by", "reason", "case_id", "request_id", "old_value_fingerprint")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_AT_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    field: str
    purpose: str
    token: str
    corrected_at: _timestamp_pb2.Timestamp
    corrected_by: str
    reason: str
    case_id: str
    request_id: str
    old_value_fingerprint: str
    def __init__(self, field: _Optional[str] = ..., purpose: _Optional[str] = ..., token: _Optional[str] = ..., corrected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., corrected_by: _Optional[str] = ..., reason: _Optional[str] = ..., case_id: _Optional[str] = ..., request_id: _Optional[str] = ..., old_value_fingerprint: _Optional[str] = ...) -> None: ...

class ListCorrectionsResponse(_message.Message):
    __slots__ = ("corrections",)
    CORRECTIONS_FIELD_NUMBER: _ClassVar[int]
    corrections: _containers.RepeatedCompositeFieldContainer[Correction]
    def __init__(self, corrections: _Optional[_Iterable[_Union[Correction, _Mapping]]] = ...) -> None: ...

class GetAccessReportRequest(_message.Message):
    __slots__ = ("subject_id", "case_id", "include_values")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_VALUES_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    case_id: str
    include_values: bool
    def __init__(self, subject_id: _Optional[str] = ..., case_id: _Optional[str] = ..., include_values: _Optional[bool] = ...) -> None: ...

class GetAccessReportResponse(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: AccessReport
    def __init__(self, report: _Optional[_Union[AccessReport, _Mapping]] = ...) -> None: ...

class AccessReport(_message.Message):
    __slots__ = ("subject_id", "generated_at", "generated_by", "case_id", "values_requested", "values", "accesses", "destroyed", "consent", "holds", "entries_cited", "entries_verified", "entries_failed", "verification_method", "holders")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATED_AT_FIELD_NUMBER: _ClassVar[int]
    GENERATED_BY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    VALUES_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    ACCESSES_FIELD_NUMBER: _ClassVar[int]
    DESTROYED_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_CITED_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FAILED_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_METHOD_FIELD_NUMBER: _ClassVar[int]
    HOLDERS_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    generated_at: _timestamp_pb2.Timestamp
    generated_by: str
    case_id: str
    values_requested: bool
    values: _containers.RepeatedCompositeFieldContainer[HeldValue]
    accesses: _containers.RepeatedCompositeFieldContainer[AccessRecord]
    destroyed: _containers.RepeatedCompositeFieldContainer[Destruction]
    consent: _containers.RepeatedCompositeFieldContainer[ConsentState]
    holds: _containers.RepeatedCompositeFieldContainer[HoldRecord]
    entries_cited: int
    entries_verified: int
    entries_failed: int
    verification_method: str
    holders: _containers.RepeatedCompositeFieldContainer[TokenHolder]
    def __init__(self, subject_id: _Optional[str] = ..., generated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., generated_by: _Optional[str] = ..., case_id: _Optional[str] = ..., values_requested: _Optional[bool] = ..., values: _Optional[_Iterable[_Union[HeldValue, _Mapping]]] = ..., accesses: _Optional[_Iterable[_Union[AccessRecord, _Mapping]]] = ..., destroyed: _Optional[_Iterable[_Union[Destruction, _Mapping]]] = ..., consent: _Optional[_Iterable[_Union[ConsentState, _Mapping]]] = ..., holds: _Optional[_Iterable[_Union[HoldRecord, _Mapping]]] = ..., entries_cited: _Optional[int] = ..., entries_verified: _Optional[int] = ..., entries_failed: _Optional[int] = ..., verification_method: _Optional[str] = ..., holders: _Optional[_Iterable[_Union[TokenHolder, _Mapping]]] = ...) -> None: ...

class TokenHolder(_message.Message):
    __slots__ = ("principal", "domain", "description", "partner_agreement", "first_issued_at", "last_issued_at")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARTNER_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    FIRST_ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    principal: str
    domain: str
    description: str
    partner_agreement: str
    first_issued_at: _timestamp_pb2.Timestamp
    last_issued_at: _timestamp_pb2.Timestamp
    def __init__(self, principal: _Optional[str] = ..., domain: _Optional[str] = ..., description: _Optional[str] = ..., partner_agreement: _Optional[str] = ..., first_issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class HeldValue(_message.Message):
    __slots__ = ("field", "field_label", "category", "purpose", "purpose_label", "source", "collected_at", "notice_given", "notice_id", "expires_at", "retention_rule", "on_expiry", "token_masked", "view", "value", "corrections", "on_hold")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    FIELD_LABEL_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_LABEL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    COLLECTED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTICE_GIVEN_FIELD_NUMBER: _ClassVar[int]
    NOTICE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    RETENTION_RULE_FIELD_NUMBER: _ClassVar[int]
    ON_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_MASKED_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CORRECTIONS_FIELD_NUMBER: _ClassVar[int]
    ON_HOLD_FIELD_NUMBER: _ClassVar[int]
    field: str
    field_label: str
    category: str
    purpose: str
    purpose_label: str
    source: str
    collected_at: _timestamp_pb2.Timestamp
    notice_given: bool
    notice_id: str
    expires_at: _timestamp_pb2.Timestamp
    retention_rule: str
    on_expiry: str
    token_masked: str
    view: ValueView
    value: str
    corrections: _containers.RepeatedCompositeFieldContainer[Correction]
    on_hold: bool
    def __init__(self, field: _Optional[str] = ..., field_label: _Optional[str] = ..., category: _Optional[str] = ..., purpose: _Optional[str] = ..., purpose_label: _Optional[str] = ..., source: _Optional[str] = ..., collected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., notice_given: _Optional[bool] = ..., notice_id: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retention_rule: _Optional[str] = ..., on_expiry: _Optional[str] = ..., token_masked: _Optional[str] = ..., view: _Optional[_Union[ValueView, str]] = ..., value: _Optional[str] = ..., corrections: _Optional[_Iterable[_Union[Correction, _Mapping]]] = ..., on_hold: _Optional[bool] = ...) -> None: ...

class AccessRecord(_message.Message):
    __slots__ = ("entry_id", "at", "principal", "partner_agreement", "action", "action_text", "field", "field_label", "purpose", "purpose_label", "outcome", "outcome_text", "verification")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    PARTNER_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTION_TEXT_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    FIELD_LABEL_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_LABEL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_TEXT_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    entry_id: int
    at: _timestamp_pb2.Timestamp
    principal: str
    partner_agreement: str
    action: str
    action_text: str
    field: str
    field_label: str
    purpose: str
    purpose_label: str
    outcome: str
    outcome_text: str
    verification: Verification
    def __init__(self, entry_id: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., principal: _Optional[str] = ..., partner_agreement: _Optional[str] = ..., action: _Optional[str] = ..., action_text: _Optional[str] = ..., field: _Optional[str] = ..., field_label: _Optional[str] = ..., purpose: _Optional[str] = ..., purpose_label: _Optional[str] = ..., outcome: _Optional[str] = ..., outcome_text: _Optional[str] = ..., verification: _Optional[_Union[Verification, str]] = ...) -> None: ...

class Destruction(_message.Message):
    __slots__ = ("at", "kind", "fields", "field_labels", "reason", "actor", "values_destroyed", "receipt", "signature")
    AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    FIELD_LABELS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    VALUES_DESTROYED_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    kind: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    field_labels: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    actor: str
    values_destroyed: int
    receipt: str
    signature: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ..., field_labels: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ..., values_destroyed: _Optional[int] = ..., receipt: _Optional[str] = ..., signature: _Optional[str] = ...) -> None: ...

class ConsentState(_message.Message):
    __slots__ = ("purpose", "purpose_label", "opted_out", "since")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_LABEL_FIELD_NUMBER: _ClassVar[int]
    OPTED_OUT_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    purpose_label: str
    opted_out: bool
    since: _timestamp_pb2.Timestamp
    def __init__(self, purpose: _Optional[str] = ..., purpose_label: _Optional[str] = ..., opted_out: _Optional[bool] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class HoldRecord(_message.Message):
    __slots__ = ("case_id", "reason", "placed_at", "placed_by", "released_at")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PLACED_AT_FIELD_NUMBER: _ClassVar[int]
    PLACED_BY_FIELD_NUMBER: _ClassVar[int]
    RELEASED_AT_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    reason: str
    placed_at: _timestamp_pb2.Timestamp
    placed_by: str
    released_at: _timestamp_pb2.Timestamp
    def __init__(self, case_id: _Optional[str] = ..., reason: _Optional[str] = ..., placed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., placed_by: _Optional[str] = ..., released_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
