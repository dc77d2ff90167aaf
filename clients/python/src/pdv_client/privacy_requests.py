"""Residents' privacy requests and complaints (pdv.v1 RequestService), as ``PdvClient.requests``.

    with PdvClient(target, api_key=key) as pdv:
        case = pdv.requests.open("deletion", subject_id="sub_…", description="Please delete my data")
        pdv.requests.update(case.case_id, status="in_progress")
        pdv.shred_subjects(["sub_…"], reason="deletion request", case_id=case.case_id)
        pdv.requests.update(case.case_id, status="answered", response_text="Deleted on …")
        pdv.requests.show(case.case_id).actions   # the shred, linked

Kinds: access, correction, deletion, restriction, complaint, disclosure. Statuses:
received, in_progress, answered, rejected, withdrawn (the last three close a request).
The texts of a request are personal data and stay out of every repr.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pdv.v1 import request_pb2, request_pb2_grpc

if TYPE_CHECKING:
    from pdv_client.client import PdvClient

__all__ = ["PrivacyRequest", "RequestCase", "StatusChange", "LinkedAction", "PrivacyRequests", "KINDS", "STATUSES"]

_KIND_CODES = {
    "access": request_pb2.REQUEST_KIND_ACCESS, "correction": request_pb2.REQUEST_KIND_CORRECTION,
    "deletion": request_pb2.REQUEST_KIND_DELETION, "restriction": request_pb2.REQUEST_KIND_RESTRICTION,
    "complaint": request_pb2.REQUEST_KIND_COMPLAINT, "disclosure": request_pb2.REQUEST_KIND_DISCLOSURE,
}
_STATUS_CODES = {
    "received": request_pb2.REQUEST_STATUS_RECEIVED, "in_progress": request_pb2.REQUEST_STATUS_IN_PROGRESS,
    "answered": request_pb2.REQUEST_STATUS_ANSWERED, "rejected": request_pb2.REQUEST_STATUS_REJECTED,
    "withdrawn": request_pb2.REQUEST_STATUS_WITHDRAWN,
}
KINDS = tuple(_KIND_CODES)
STATUSES = tuple(_STATUS_CODES)
_KINDS = {v: k for k, v in _KIND_CODES.items()}
_STATUSES = {v: k for k, v in _STATUS_CODES.items()}


@dataclass(frozen=True)
class PrivacyRequest:
    """A request as listed: who it is about, where it is, when it is due. No free text."""

    case_id: str
    kind: str
    subject_id: str | None
    status: str
    received_at: datetime
    due_at: datetime
    closed_at: datetime | None
    opened_by: str


@dataclass(frozen=True)
class StatusChange:
    """One history row: from (None for the opening), to, who, when, whether the response was set."""

    from_status: str | None
    to_status: str
    principal: str
    at: datetime
    response_set: bool


@dataclass(frozen=True)
class LinkedAction:
    """An action taken under the request (shred, shred_fields, consent, hold, release_hold, correction)."""

    action: str
    subject_id: str | None
    detail: str
    outcome: str
    principal: str
    at: datetime


@dataclass(frozen=True)
class RequestCase:
    """A whole request: its texts (kept out of repr), history and linked actions."""

    request: PrivacyRequest
    description: str = dataclass_field(repr=False)
    contact: str = dataclass_field(repr=False)
    response_text: str = dataclass_field(repr=False)
    history: tuple[StatusChange, ...] = ()
    actions: tuple[LinkedAction, ...] = ()


class PrivacyRequests:
    """The RequestService calls of one PdvClient (same channel, key, timeout and error mapping)."""

    def __init__(self, client: PdvClient) -> None:
        self._client = client
        self._stub = request_pb2_grpc.RequestServiceStub(client._channel)  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        return "PrivacyRequests(<client>)"

    def open(self, kind: str, *, subject_id: str | None = None, description: str, contact: str = "",
             timeout: float | None = None) -> PrivacyRequest:
        """Record a request (status "received"); a complaint or disclosure request may name no subject."""
        request = request_pb2.OpenCaseRequest(kind=_code(_KIND_CODES, kind, "kind"), subject_id=subject_id or "",
                                              description=description, contact=contact)
        return _request(self._client._call(self._stub.OpenCase, request, "", timeout).request)

    def list(self, *, status: str | None = None, kind: str | None = None, subject_id: str | None = None,
             open_only: bool = False, timeout: float | None = None) -> list[PrivacyRequest]:
        """Requests matching every filter given, newest first."""
        request = request_pb2.ListCasesRequest(
            status=_code(_STATUS_CODES, status, "status") if status else 0,
            kind=_code(_KIND_CODES, kind, "kind") if kind else 0, subject_id=subject_id or "", open_only=open_only)
        return [_request(r) for r in self._client._call(self._stub.ListCases, request, "", timeout).requests]

    def show(self, case_id: str, *, timeout: float | None = None) -> RequestCase:
        """One request with its texts, history and linked actions."""
        r = self._client._call(self._stub.GetCase, request_pb2.GetCaseRequest(case_id=case_id), "", timeout)
        return RequestCase(
            _request(r.request), r.description, r.contact, r.response_text,
            tuple(StatusChange(_STATUSES.get(h.from_status), _STATUSES[h.to_status], h.principal, _when(h.at),
                               h.response_set) for h in r.history),
            tuple(LinkedAction(a.action, a.subject_id or None, a.detail, a.outcome, a.principal, _when(a.at))
                  for a in r.actions),
        )

    def update(self, case_id: str, *, status: str | None = None, response_text: str = "",
               timeout: float | None = None) -> PrivacyRequest:
        """Move the request to `status` and/or set its response; FailedPrecondition if the workflow forbids it."""
        request = request_pb2.UpdateCaseRequest(
            case_id=case_id, status=_code(_STATUS_CODES, status, "status") if status else 0, response_text=response_text)
        return _request(self._client._call(self._stub.UpdateCase, request, "", timeout).request)

    def overdue(self, *, timeout: float | None = None) -> list[PrivacyRequest]:
        """Open requests past their due date, the longest overdue first."""
        response = self._client._call(self._stub.ListOverdueCases, request_pb2.ListOverdueCasesRequest(), "", timeout)
        return [_request(r) for r in response.requests]


def _code(codes: dict[str, int], name: str | None, what: str) -> int:
    if name not in codes:
        raise ValueError(f"unknown {what} {name!r} (one of: {', '.join(codes)})")
    return codes[name]


def _when(stamp: Any) -> datetime:
    return stamp.ToDatetime(tzinfo=timezone.utc)


def _request(r: Any) -> PrivacyRequest:
    return PrivacyRequest(
        r.case_id, _KINDS.get(r.kind, "unknown"), r.subject_id or None, _STATUSES.get(r.status, "unknown"),
        _when(r.received_at), _when(r.due_at), _when(r.closed_at) if r.HasField("closed_at") else None, r.opened_by,
    )
