import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeyStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KekVersion(_message.Message):
    __slots__ = ("version", "created_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    version: int
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class KeyStatusResponse(_message.Message):
    __slots__ = ("latest_version", "vault_metadata", "min_decryption_version", "min_encryption_version", "min_available_version", "auto_rotate_period_seconds", "versions", "data_keys", "wrapped_secrets")
    class DataKeysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    class WrappedSecretsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    VAULT_METADATA_FIELD_NUMBER: _ClassVar[int]
    MIN_DECRYPTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    MIN_ENCRYPTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    MIN_AVAILABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    AUTO_ROTATE_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    DATA_KEYS_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_SECRETS_FIELD_NUMBER: _ClassVar[int]
    latest_version: int
    vault_metadata: bool
    min_decryption_version: int
    min_encryption_version: int
    min_available_version: int
    auto_rotate_period_seconds: int
    versions: _containers.RepeatedCompositeFieldContainer[KekVersion]
    data_keys: _containers.ScalarMap[int, int]
    wrapped_secrets: _containers.ScalarMap[int, int]
    def __init__(self, latest_version: _Optional[int] = ..., vault_metadata: _Optional[bool] = ..., min_decryption_version: _Optional[int] = ..., min_encryption_version: _Optional[int] = ..., min_available_version: _Optional[int] = ..., auto_rotate_period_seconds: _Optional[int] = ..., versions: _Optional[_Iterable[_Union[KekVersion, _Mapping]]] = ..., data_keys: _Optional[_Mapping[int, int]] = ..., wrapped_secrets: _Optional[_Mapping[int, int]] = ...) -> None: ...

class RotateKekRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RotateKekResponse(_message.Message):
    __slots__ = ("latest_version",)
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    latest_version: int
    def __init__(self, latest_version: _Optional[int] = ...) -> None: ...

class ScheduleKekRotationRequest(_message.Message):
    __slots__ = ("period_seconds",)
    PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    period_seconds: int
    def __init__(self, period_seconds: _Optional[int] = ...) -> None: ...

class ScheduleKekRotationResponse(_message.Message):
    __slots__ = ("auto_rotate_period_seconds", "next_rotation")
    AUTO_ROTATE_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ROTATION_FIELD_NUMBER: _ClassVar[int]
    auto_rotate_period_seconds: int
    next_rotation: _timestamp_pb2.Timestamp
    def __init__(self, auto_rotate_period_seconds: _Optional[int] = ..., next_rotation: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RewrapRequest(_message.Message):
    __slots__ = ("batch_size",)
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    batch_size: int
    def __init__(self, batch_size: _Optional[int] = ...) -> None: ...

class RewrapProgress(_message.Message):
    __slots__ = ("total", "done")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    total: int
    done: int
    def __init__(self, total: _Optional[int] = ..., done: _Optional[int] = ...) -> None: ...

class RewrapReport(_message.Message):
    __slots__ = ("latest_version", "rewrapped", "skipped", "failed", "remaining", "seconds")
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    REWRAPPED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    latest_version: int
    rewrapped: int
    skipped: int
    failed: int
    remaining: int
    seconds: float
    def __init__(self, latest_version: _Optional[int] = ..., rewrapped: _Optional[int] = ..., skipped: _Optional[int] = ..., failed: _Optional[int] = ..., remaining: _Optional[int] = ..., seconds: _Optional[float] = ...) -> None: ...

class RewrapResponse(_message.Message):
    __slots__ = ("progress", "report")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    progress: RewrapProgress
    report: RewrapReport
    def __init__(self, progress: _Optional[_Union[RewrapProgress, _Mapping]] = ..., report: _Optional[_Union[RewrapReport, _Mapping]] = ...) -> None: ...

class TrimKekRequest(_message.Message):
    __slots__ = ("backup_horizon_days",)
    BACKUP_HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    backup_horizon_days: float
    def __init__(self, backup_horizon_days: _Optional[float] = ...) -> None: ...

class TrimKekResponse(_message.Message):
    __slots__ = ("retired_below", "trimmed")
    RETIRED_BELOW_FIELD_NUMBER: _ClassVar[int]
    TRIMMED_FIELD_NUMBER: _ClassVar[int]
    retired_below: int
    trimmed: bool
    def __init__(self, retired_below: _Optional[int] = ..., trimmed: _Optional[bool] = ...) -> None: ...

class RotateDekRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class RotateDekResponse(_message.Message):
    __slots__ = ("subject_id", "old_versions", "new_version", "values")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    OLD_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEW_VERSION_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    old_versions: _containers.RepeatedScalarFieldContainer[int]
    new_version: int
    values: int
    def __init__(self, subject_id: _Optional[str] = ..., old_versions: _Optional[_Iterable[int]] = ..., new_version: _Optional[int] = ..., values: _Optional[int] = ...) -> None: ...

class DisposeRequest(_message.Message):
    __slots__ = ("dry_run", "now")
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    now: _timestamp_pb2.Timestamp
    def __init__(self, dry_run: _Optional[bool] = ..., now: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DisposeProgress(_message.Message):
    __slots__ = ("total", "done")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    total: int
    done: int
    def __init__(self, total: _Optional[int] = ..., done: _Optional[int] = ...) -> None: ...

class HeldSubject(_message.Message):
    __slots__ = ("subject_id", "case_ids")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_IDS_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    case_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, subject_id: _Optional[str] = ..., case_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DisposeReport(_message.Message):
    __slots__ = ("now", "dry_run", "values_disposed", "values_deidentified", "subjects_shredded", "subjects_with_fields_shredded", "receipts", "held", "values_held", "answers_pruned", "requests_deleted")
    class ValuesDisposedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ValuesDeidentifiedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NOW_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    VALUES_DISPOSED_FIELD_NUMBER: _ClassVar[int]
    VALUES_DEIDENTIFIED_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_SHREDDED_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_WITH_FIELDS_SHREDDED_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    VALUES_HELD_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_PRUNED_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    now: _timestamp_pb2.Timestamp
    dry_run: bool
    values_disposed: _containers.ScalarMap[str, int]
    values_deidentified: _containers.ScalarMap[str, int]
    subjects_shredded: int
    subjects_with_fields_shredded: int
    receipts: int
    held: _containers.RepeatedCompositeFieldContainer[HeldSubject]
    values_held: int
    answers_pruned: int
    requests_deleted: int
    def __init__(self, now: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dry_run: _Optional[bool] = ..., values_disposed: _Optional[_Mapping[str, int]] = ..., values_deidentified: _Optional[_Mapping[str, int]] = ..., subjects_shredded: _Optional[int] = ..., subjects_with_fields_shredded: _Optional[int] = ..., receipts: _Optional[int] = ..., held: _Optional[_Iterable[_Union[HeldSubject, _Mapping]]] = ..., values_held: _Optional[int] = ..., answers_pruned: _Optional[int] = ..., requests_deleted: _Optional[int] = ...) -> None: ...

class DisposeResponse(_message.Message):
    __slots__ = ("progress", "report")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    progress: DisposeProgress
    report: DisposeReport
    def __init__(self, progress: _Optional[_Union[DisposeProgress, _Mapping]] = ..., report: _Optional[_Union[DisposeReport, _Mapping]] = ...) -> None: ...

class VerifyAuditLogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuditProblem(_message.Message):
    __slots__ = ("what", "chain", "seq", "entry_id", "text")
    WHAT_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    what: str
    chain: str
    seq: int
    entry_id: int
    text: str
    def __init__(self, what: _Optional[str] = ..., chain: _Optional[str] = ..., seq: _Optional[int] = ..., entry_id: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class VerifyAuditLogResponse(_message.Message):
    __slots__ = ("intact", "empty", "entries", "chains", "checkpoints", "problems", "unlisted", "notes")
    INTACT_FIELD_NUMBER: _ClassVar[int]
    EMPTY_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CHAINS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    UNLISTED_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    intact: bool
    empty: bool
    entries: int
    chains: int
    checkpoints: int
    problems: _containers.RepeatedCompositeFieldContainer[AuditProblem]
    unlisted: int
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, intact: _Optional[bool] = ..., empty: _Optional[bool] = ..., entries: _Optional[int] = ..., chains: _Optional[int] = ..., checkpoints: _Optional[int] = ..., problems: _Optional[_Iterable[_Union[AuditProblem, _Mapping]]] = ..., unlisted: _Optional[int] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class ListHoldsRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class LegalHold(_message.Message):
    __slots__ = ("subject_id", "case_id", "reason", "placed_by", "placed_at")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PLACED_BY_FIELD_NUMBER: _ClassVar[int]
    PLACED_AT_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    case_id: str
    reason: str
    placed_by: str
    placed_at: _timestamp_pb2.Timestamp
    def __init__(self, subject_id: _Optional[str] = ..., case_id: _Optional[str] = ..., reason: _Optional[str] = ..., placed_by: _Optional[str] = ..., placed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListHoldsResponse(_message.Message):
    __slots__ = ("holds",)
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    holds: _containers.RepeatedCompositeFieldContainer[LegalHold]
    def __init__(self, holds: _Optional[_Iterable[_Union[LegalHold, _Mapping]]] = ...) -> None: ...

class ReloadPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadPolicyResponse(_message.Message):
    __slots__ = ("source", "principals", "grants", "warnings")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PRINCIPALS_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    source: str
    principals: int
    grants: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, source: _Optional[str] = ..., principals: _Optional[int] = ..., grants: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class CheckPolicyRequest(_message.Message):
    __slots__ = ("policy_yaml",)
    POLICY_YAML_FIELD_NUMBER: _ClassVar[int]
    policy_yaml: str
    def __init__(self, policy_yaml: _Optional[str] = ...) -> None: ...

class CheckPolicyResponse(_message.Message):
    __slots__ = ("valid", "error", "warnings", "principals", "grants")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    PRINCIPALS_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    error: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    principals: int
    grants: int
    def __init__(self, valid: _Optional[bool] = ..., error: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., principals: _Optional[int] = ..., grants: _Optional[int] = ...) -> None: ...
