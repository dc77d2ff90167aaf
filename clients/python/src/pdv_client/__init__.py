"""Typed Python client for the PDV personal-data vault (pdv.v1 TokenService).

    from pdv_client import PdvClient, Record

    with PdvClient("127.0.0.1:50051", api_key=key) as pdv:
        (rec,) = pdv.tokenize([Record({"email": "a@example.org"})],
                              purpose="service-request", source="311")
        email = pdv.detokenize_one(rec.tokens["email"], purpose="service-request")

The generated stubs are importable directly as ``from pdv.v1 import token_pb2``.
"""

from pdv_client.client import DEFAULT_BATCH_SIZE, DEFAULT_TIMEOUT, PdvClient
from pdv_client.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    OutOfRange,
    NotFound,
    PdvError,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    error_for_status,
)
from pdv_client.models import (
    CorrectedValue, Correction, DetokenizeResult, ItemError, Match, Record, RecordTokens, ShredOutcome, TranslateResult,
)
from pdv_client.disclosure import Disclosed
from pdv_client.events import Event, EventToken
from pdv_client.admin import (
    AuditVerification, DisposalReport, KeyStatus, LegalHold, PolicyCheck, PolicyInfo, RewrapReport,
)
from pdv_client.privacy_requests import LinkedAction, PrivacyRequest, RequestCase, StatusChange

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_TIMEOUT",
    "PdvClient",
    "Record",
    "RecordTokens",
    "ItemError",
    "DetokenizeResult",
    "TranslateResult",
    "Match",
    "ShredOutcome",
    "PrivacyRequest",
    "RequestCase",
    "StatusChange",
    "LinkedAction",
    "Disclosed",
    "Event",
    "EventToken",
    "CorrectedValue",
    "Correction",
    "KeyStatus",
    "RewrapReport",
    "DisposalReport",
    "AuditVerification",
    "LegalHold",
    "PolicyInfo",
    "PolicyCheck",
    "PdvError",
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "Unauthenticated",
    "ResourceExhausted",
    "FailedPrecondition",
    "Unavailable",
    "OutOfRange",
    "DeadlineExceeded",
    "Internal",
    "error_for_status",
]
