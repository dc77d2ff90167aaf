from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BatchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_MODE_UNSPECIFIED: _ClassVar[BatchMode]
    BATCH_MODE_ATOMIC: _ClassVar[BatchMode]
    BATCH_MODE_PARTIAL: _ClassVar[BatchMode]
BATCH_MODE_UNSPECIFIED: BatchMode
BATCH_MODE_ATOMIC: BatchMode
BATCH_MODE_PARTIAL: BatchMode

class Record(_message.Message):
    __slots__ = ("subject_id", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    fields: _containers.ScalarMap[str, str]
    def __init__(self, subject_id: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TokenizeRequest(_message.Message):
    __slots__ = ("request_id", "purpose", "source", "notice_id", "records", "mode", "notice_given")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    NOTICE_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    NOTICE_GIVEN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    purpose: str
    source: str
    notice_id: str
    records: _containers.RepeatedCompositeFieldContainer[Record]
    mode: BatchMode
    notice_given: bool
    def __init__(self, request_id: _Optional[str] = ..., purpose: _Optional[str] = ..., source: _Optional[str] = ..., notice_id: _Optional[str] = ..., records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ..., mode: _Optional[_Union[BatchMode, str]] = ..., notice_given: _Optional[bool] = ...) -> None: ...

class RecordTokens(_message.Message):
    __slots__ = ("subject_id", "tokens")
    class TokensEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    tokens: _containers.ScalarMap[str, str]
    def __init__(self, subject_id: _Optional[str] = ..., tokens: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("index", "field", "code", "message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    field: str
    code: int
    message: str
    def __init__(self, index: _Optional[int] = ..., field: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class TokenizeResponse(_message.Message):
    __slots__ = ("results", "errors")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RecordTokens]
    errors: _containers.RepeatedCompositeFieldContainer[ItemError]
    def __init__(self, results: _Optional[_Iterable[_Union[RecordTokens, _Mapping]]] = ..., errors: _Optional[_Iterable[_Union[ItemError, _Mapping]]] = ...) -> None: ...

class DetokenizeItem(_message.Message):
    __slots__ = ("token", "field")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    token: str
    field: str
    def __init__(self, token: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class DetokenizeRequest(_message.Message):
    __slots__ = ("purpose", "items", "request_id")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    items: _containers.RepeatedCompositeFieldContainer[DetokenizeItem]
    request_id: str
    def __init__(self, purpose: _Optional[str] = ..., items: _Optional[_Iterable[_Union[DetokenizeItem, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class DetokenizeResult(_message.Message):
    __slots__ = ("token", "field", "value", "code", "message")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    token: str
    field: str
    value: str
    code: int
    message: str
    def __init__(self, token: _Optional[str] = ..., field: _Optional[str] = ..., value: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class DetokenizeResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DetokenizeResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DetokenizeResult, _Mapping]]] = ...) -> None: ...

class LookupQuery(_message.Message):
    __slots__ = ("field", "value")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    field: str
    value: str
    def __init__(self, field: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class LookupRequest(_message.Message):
    __slots__ = ("purpose", "queries", "request_id")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    queries: _containers.RepeatedCompositeFieldContainer[LookupQuery]
    request_id: str
    def __init__(self, purpose: _Optional[str] = ..., queries: _Optional[_Iterable[_Union[LookupQuery, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class LookupMatch(_message.Message):
    __slots__ = ("subject_id", "token")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    token: str
    def __init__(self, subject_id: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class LookupResult(_message.Message):
    __slots__ = ("matches",)
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    matches: _containers.RepeatedCompositeFieldContainer[LookupMatch]
    def __init__(self, matches: _Optional[_Iterable[_Union[LookupMatch, _Mapping]]] = ...) -> None: ...

class LookupResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[LookupResult]
    def __init__(self, results: _Optional[_Iterable[_Union[LookupResult, _Mapping]]] = ...) -> None: ...

class TranslateRequest(_message.Message):
    __slots__ = ("purpose", "from_domain", "items", "request_id")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    FROM_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    from_domain: str
    items: _containers.RepeatedCompositeFieldContainer[DetokenizeItem]
    request_id: str
    def __init__(self, purpose: _Optional[str] = ..., from_domain: _Optional[str] = ..., items: _Optional[_Iterable[_Union[DetokenizeItem, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class TranslateResult(_message.Message):
    __slots__ = ("token", "field", "translated_token", "code", "message")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    TRANSLATED_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    token: str
    field: str
    translated_token: str
    code: int
    message: str
    def __init__(self, token: _Optional[str] = ..., field: _Optional[str] = ..., translated_token: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class TranslateResponse(_message.Message):
    __slots__ = ("results", "domain")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TranslateResult]
    domain: str
    def __init__(self, results: _Optional[_Iterable[_Union[TranslateResult, _Mapping]]] = ..., domain: _Optional[str] = ...) -> None: ...
