import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_SHREDDED: _ClassVar[EventKind]
    EVENT_KIND_FIELDS_SHREDDED: _ClassVar[EventKind]
    EVENT_KIND_DISPOSED: _ClassVar[EventKind]
    EVENT_KIND_DEIDENTIFIED: _ClassVar[EventKind]
    EVENT_KIND_CORRECTED: _ClassVar[EventKind]
    EVENT_KIND_CONSENT_WITHDRAWN: _ClassVar[EventKind]
    EVENT_KIND_CONSENT_GIVEN: _ClassVar[EventKind]
    EVENT_KIND_HOLD_PLACED: _ClassVar[EventKind]
    EVENT_KIND_HOLD_RELEASED: _ClassVar[EventKind]
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_SHREDDED: EventKind
EVENT_KIND_FIELDS_SHREDDED: EventKind
EVENT_KIND_DISPOSED: EventKind
EVENT_KIND_DEIDENTIFIED: EventKind
EVENT_KIND_CORRECTED: EventKind
EVENT_KIND_CONSENT_WITHDRAWN: EventKind
EVENT_KIND_CONSENT_GIVEN: EventKind
EVENT_KIND_HOLD_PLACED: EventKind
EVENT_KIND_HOLD_RELEASED: EventKind

class SubscribeRequest(_message.Message):
    __slots__ = ("cursor",)
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    def __init__(self, cursor: _Optional[str] = ...) -> None: ...

class EventToken(_message.Message):
    __slots__ = ("field", "token", "previous_token")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    field: str
    token: str
    previous_token: str
    def __init__(self, field: _Optional[str] = ..., token: _Optional[str] = ..., previous_token: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("cursor", "kind", "at", "tokens", "receipt_id", "correction_id", "fields", "purpose")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_ID_FIELD_NUMBER: _ClassVar[int]
    CORRECTION_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    kind: EventKind
    at: _timestamp_pb2.Timestamp
    tokens: _containers.RepeatedCompositeFieldContainer[EventToken]
    receipt_id: str
    correction_id: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    purpose: str
    def __init__(self, cursor: _Optional[str] = ..., kind: _Optional[_Union[EventKind, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tokens: _Optional[_Iterable[_Union[EventToken, _Mapping]]] = ..., receipt_id: _Optional[str] = ..., correction_id: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ..., purpose: _Optional[str] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: Event
    def __init__(self, event: _Optional[_Union[Event, _Mapping]] = ...) -> None: ...

class AckRequest(_message.Message):
    __slots__ = ("cursor",)
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    def __init__(self, cursor: _Optional[str] = ...) -> None: ...

class AckResponse(_message.Message):
    __slots__ = ("acked_cursor",)
    ACKED_CURSOR_FIELD_NUMBER: _ClassVar[int]
    acked_cursor: str
    def __init__(self, acked_cursor: _Optional[str] = ...) -> None: ...
