import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RequestKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_KIND_UNSPECIFIED: _ClassVar[RequestKind]
    REQUEST_KIND_ACCESS: _ClassVar[RequestKind]
    REQUEST_KIND_CORRECTION: _ClassVar[RequestKind]
    REQUEST_KIND_DELETION: _ClassVar[RequestKind]
    REQUEST_KIND_RESTRICTION: _ClassVar[RequestKind]
    REQUEST_KIND_COMPLAINT: _ClassVar[RequestKind]
    REQUEST_KIND_DISCLOSURE: _ClassVar[RequestKind]

class RequestStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_STATUS_UNSPECIFIED: _ClassVar[RequestStatus]
    REQUEST_STATUS_RECEIVED: _ClassVar[RequestStatus]
    REQUEST_STATUS_IN_PROGRESS: _ClassVar[RequestStatus]
    REQUEST_STATUS_ANSWERED: _ClassVar[RequestStatus]
    REQUEST_STATUS_REJECTED: _ClassVar[RequestStatus]
    REQUEST_STATUS_WITHDRAWN: _ClassVar[RequestStatus]
REQUEST_KIND_UNSPECIFIED: RequestKind
REQUEST_KIND_ACCESS: RequestKind
REQUEST_KIND_CORRECTION: RequestKind
REQUEST_KIND_DELETION: RequestKind
REQUEST_KIND_RESTRICTION: RequestKind
REQUEST_KIND_COMPLAINT: RequestKind
REQUEST_KIND_DISCLOSURE: RequestKind
REQUEST_STATUS_UNSPECIFIED: RequestStatus
REQUEST_STATUS_RECEIVED: RequestStatus
REQUEST_STATUS_IN_PROGRESS: RequestStatus
REQUEST_STATUS_ANSWERED: RequestStatus
REQUEST_STATUS_REJECTED: RequestStatus
REQUEST_STATUS_WITHDRAWN: RequestStatus

class PrivacyRequest(_message.Message):
    __slots__ = ("case_id", "kind", "subject_id", "status", "received_at", "due_at", "closed_at", "opened_by")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    OPENED_BY_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    kind: RequestKind
    subject_id: str
    status: RequestStatus
    received_at: _timestamp_pb2.Timestamp
    due_at: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    opened_by: str
    def __init__(self, case_id: _Optional[str] = ..., kind: _Optional[_Union[RequestKind, str]] = ..., subject_id: _Optional[str] = ..., status: _Optional[_Union[RequestStatus, str]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., opened_by: _Optional[str] = ...) -> None: ...

class StatusChange(_message.Message):
    __slots__ = ("from_status", "to_status", "principal", "at", "response_set")
    FROM_STATUS_FIELD_NUMBER: _ClassVar[int]
    TO_STATUS_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_SET_FIELD_NUMBER: _ClassVar[int]
    from_status: RequestStatus
    to_status: RequestStatus
    principal: str
    at: _timestamp_pb2.Timestamp
    response_set: bool
    def __init__(self, from_status: _Optional[_Union[RequestStatus, str]] = ..., to_status: _Optional[_Union[RequestStatus, str]] = ..., principal: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., response_set: _Optional[bool] = ...) -> None: ...

class LinkedAction(_message.Message):
    __slots__ = ("action", "subject_id", "detail", "outcome", "principal", "at")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    action: str
    subject_id: str
    detail: str
    outcome: str
    principal: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, action: _Optional[str] = ..., subject_id: _Optional[str] = ..., detail: _Optional[str] = ..., outcome: _Optional[str] = ..., principal: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OpenCaseRequest(_message.Message):
    __slots__ = ("kind", "subject_id", "description", "contact")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    kind: RequestKind
    subject_id: str
    description: str
    contact: str
    def __init__(self, kind: _Optional[_Union[RequestKind, str]] = ..., subject_id: _Optional[str] = ..., description: _Optional[str] = ..., contact: _Optional[str] = ...) -> None: ...

class OpenCaseResponse(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: PrivacyRequest
    def __init__(self, request: _Optional[_Union[PrivacyRequest, _Mapping]] = ...) -> None: ...

class ListCasesRequest(_message.Message):
    __slots__ = ("status", "kind", "subject_id", "open_only")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    OPEN_ONLY_FIELD_NUMBER: _ClassVar[int]
    status: RequestStatus
    kind: RequestKind
    subject_id: str
    open_only: bool
    def __init__(self, status: _Optional[_Union[RequestStatus, str]] = ..., kind: _Optional[_Union[RequestKind, str]] = ..., subject_id: _Optional[str] = ..., open_only: _Optional[bool] = ...) -> None: ...

class ListCasesResponse(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[PrivacyRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[PrivacyRequest, _Mapping]]] = ...) -> None: ...

class GetCaseRequest(_message.Message):
    __slots__ = ("case_id",)
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    def __init__(self, case_id: _Optional[str] = ...) -> None: ...

class GetCaseResponse(_message.Message):
    __slots__ = ("request", "description", "contact", "response_text", "history", "actions")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TEXT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    request: PrivacyRequest
    description: str
    contact: str
    response_text: str
    history: _containers.RepeatedCompositeFieldContainer[StatusChange]
    actions: _containers.RepeatedCompositeFieldContainer[LinkedAction]
    def __init__(self, request: _Optional[_Union[PrivacyRequest, _Mapping]] = ..., description: _Optional[str] = ..., contact: _Optional[str] = ..., response_text: _Optional[str] = ..., history: _Optional[_Iterable[_Union[StatusChange, _Mapping]]] = ..., actions: _Optional[_Iterable[_Union[LinkedAction, _Mapping]]] = ...) -> None: ...

class UpdateCaseRequest(_message.Message):
    __slots__ = ("case_id", "status", "response_text")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TEXT_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    status: RequestStatus
    response_text: str
    def __init__(self, case_id: _Optional[str] = ..., status: _Optional[_Union[RequestStatus, str]] = ..., response_text: _Optional[str] = ...) -> None: ...

class UpdateCaseResponse(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: PrivacyRequest
    def __init__(self, request: _Optional[_Union[PrivacyRequest, _Mapping]] = ...) -> None: ...

class ListOverdueCasesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListOverdueCasesResponse(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[PrivacyRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[PrivacyRequest, _Mapping]]] = ...) -> None: ...
