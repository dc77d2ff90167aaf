"""RequestService: residents' privacy requests and complaints (vault/services/rights/).
Thin: proto enums and timestamps to and from the domain's names; RequestAccess decides who
may call, and logs every refusal."""

from __future__ import annotations

import uuid
from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pdv.v1 import request_pb2 as pb
from pdv.v1 import request_pb2_grpc as pb_grpc

from vault.api.auth import current_principal
from vault.api.status import abort_with
from vault.errors import InvalidInput
from vault.services.common import Caller
from vault.services.rights.requests import RequestCase, RequestService, RequestSummary

KINDS = {
    pb.REQUEST_KIND_ACCESS: "access", pb.REQUEST_KIND_CORRECTION: "correction", pb.REQUEST_KIND_DELETION: "deletion",
    pb.REQUEST_KIND_RESTRICTION: "restriction", pb.REQUEST_KIND_COMPLAINT: "complaint",
    pb.REQUEST_KIND_DISCLOSURE: "disclosure",
}
STATUSES = {
    pb.REQUEST_STATUS_RECEIVED: "received", pb.REQUEST_STATUS_IN_PROGRESS: "in_progress",
    pb.REQUEST_STATUS_ANSWERED: "answered", pb.REQUEST_STATUS_REJECTED: "rejected",
    pb.REQUEST_STATUS_WITHDRAWN: "withdrawn",
}
_KIND_CODES = {v: k for k, v in KINDS.items()}
_STATUS_CODES = {v: k for k, v in STATUSES.items()}


class RequestServicer(pb_grpc.RequestServiceServicer):
    def __init__(self, requests: RequestService) -> None:
        self._requests = requests

    @staticmethod
    def _caller() -> Caller:
        return Caller(current_principal.get().name, f"gen-{uuid.uuid4().hex}")

    def OpenCase(self, request: pb.OpenCaseRequest, context: grpc.ServicerContext) -> pb.OpenCaseResponse:
        try:
            kind = _kind(request.kind, required=True)
            opened = self._requests.open(self._caller(), kind, request.subject_id or None,  # type: ignore[arg-type]
                                         request.description, request.contact)
        except Exception as exc:  # noqa: BLE001 - mapped in one place
            abort_with(context, exc, "OpenCase")
        return pb.OpenCaseResponse(request=_summary(opened))

    def ListCases(self, request: pb.ListCasesRequest, context: grpc.ServicerContext) -> pb.ListCasesResponse:
        try:
            found = self._requests.list(self._caller(), _status(request.status), _kind(request.kind),
                                        request.subject_id or None, request.open_only)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "ListCases")
        return pb.ListCasesResponse(requests=[_summary(r) for r in found])

    def GetCase(self, request: pb.GetCaseRequest, context: grpc.ServicerContext) -> pb.GetCaseResponse:
        try:
            case = self._requests.show(self._caller(), request.case_id)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "GetCase")
        return _case(case)

    def UpdateCase(self, request: pb.UpdateCaseRequest, context: grpc.ServicerContext) -> pb.UpdateCaseResponse:
        try:
            updated = self._requests.update(self._caller(), request.case_id, _status(request.status),
                                            request.response_text)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "UpdateCase")
        return pb.UpdateCaseResponse(request=_summary(updated))

    def ListOverdueCases(self, request: pb.ListOverdueCasesRequest, context: grpc.ServicerContext
                         ) -> pb.ListOverdueCasesResponse:
        try:
            late = self._requests.overdue(self._caller())
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "ListOverdueCases")
        return pb.ListOverdueCasesResponse(requests=[_summary(r) for r in late])


def _kind(code: int, required: bool = False) -> str | None:
    if code == pb.REQUEST_KIND_UNSPECIFIED and not required:
        return None
    if code not in KINDS:
        raise InvalidInput(f"kind is {'required' if code == pb.REQUEST_KIND_UNSPECIFIED else 'unknown'} "
                           f"(one of: {', '.join(KINDS.values())})")
    return KINDS[code]


def _status(code: int) -> str | None:
    if code == pb.REQUEST_STATUS_UNSPECIFIED:
        return None
    if code not in STATUSES:
        raise InvalidInput(f"status is unknown (one of: {', '.join(STATUSES.values())})")
    return STATUSES[code]


def _time(at: datetime | None) -> Timestamp | None:
    if at is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def _summary(r: RequestSummary) -> pb.PrivacyRequest:
    return pb.PrivacyRequest(
        case_id=r.case_id, kind=_KIND_CODES[r.kind], subject_id=r.subject_id or "", status=_STATUS_CODES[r.status],
        received_at=_time(r.received_at), due_at=_time(r.due_at), closed_at=_time(r.closed_at), opened_by=r.opened_by,
    )


def _case(case: RequestCase) -> pb.GetCaseResponse:
    return pb.GetCaseResponse(
        request=_summary(case.summary), description=case.description, contact=case.contact,
        response_text=case.response_text,
        history=[pb.StatusChange(from_status=_STATUS_CODES.get(h.from_status or "", pb.REQUEST_STATUS_UNSPECIFIED),
                                 to_status=_STATUS_CODES[h.to_status], principal=h.principal, at=_time(h.at),
                                 response_set=h.response_set) for h in case.history],
        actions=[pb.LinkedAction(action=a.action, subject_id=a.subject_id or "", detail=a.detail or "",
                                 outcome=a.outcome, principal=a.principal, at=_time(a.at)) for a in case.actions],
    )
