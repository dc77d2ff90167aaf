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
SHRED_STATUS_UNSPECIFIED: ShredStatus
SHRED_STATUS_SHREDDED: ShredStatus
SHRED_STATUS_ALREADY_SHREDDED: ShredStatus
SHRED_STATUS_ON_HOLD: ShredStatus
SHRED_STATUS_NOT_FOUND: ShredStatus

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
