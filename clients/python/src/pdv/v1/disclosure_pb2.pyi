from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DisclosureOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISCLOSURE_OUTCOME_UNSPECIFIED: _ClassVar[DisclosureOutcome]
    DISCLOSURE_OUTCOME_PUBLIC: _ClassVar[DisclosureOutcome]
    DISCLOSURE_OUTCOME_MASKED: _ClassVar[DisclosureOutcome]
    DISCLOSURE_OUTCOME_REDACTED: _ClassVar[DisclosureOutcome]
    DISCLOSURE_OUTCOME_NOT_A_TOKEN: _ClassVar[DisclosureOutcome]
DISCLOSURE_OUTCOME_UNSPECIFIED: DisclosureOutcome
DISCLOSURE_OUTCOME_PUBLIC: DisclosureOutcome
DISCLOSURE_OUTCOME_MASKED: DisclosureOutcome
DISCLOSURE_OUTCOME_REDACTED: DisclosureOutcome
DISCLOSURE_OUTCOME_NOT_A_TOKEN: DisclosureOutcome

class DiscloseItem(_message.Message):
    __slots__ = ("token", "field")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    token: str
    field: str
    def __init__(self, token: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class DiscloseRequest(_message.Message):
    __slots__ = ("purpose", "case_id", "request_id", "items")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    case_id: str
    request_id: str
    items: _containers.RepeatedCompositeFieldContainer[DiscloseItem]
    def __init__(self, purpose: _Optional[str] = ..., case_id: _Optional[str] = ..., request_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[DiscloseItem, _Mapping]]] = ...) -> None: ...

class DiscloseResult(_message.Message):
    __slots__ = ("outcome", "text")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    outcome: DisclosureOutcome
    text: str
    def __init__(self, outcome: _Optional[_Union[DisclosureOutcome, str]] = ..., text: _Optional[str] = ...) -> None: ...

class DiscloseResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DiscloseResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DiscloseResult, _Mapping]]] = ...) -> None: ...
