"""SubjectService: disposal, legal holds and consent, for the principals named in
`admin_principals` or granted the matching action by the policy (`shred` for disposal, holds
and receipts, `admin` for consent)."""

from __future__ import annotations

import uuid

import grpc
from pdv.v1 import subject_pb2 as pb
from pdv.v1 import subject_pb2_grpc as pb_grpc

from vault.api.auth import current_principal
from vault.api.status import abort_with
from vault.errors import PermissionDenied
from vault.policy import ADMIN, SHRED
from vault.services.access import AccessControl
from vault.services.common import Caller
from vault.services.consent import ConsentService
from vault.services.shred import ShredService
from vault.services.shred_steps import ShredResult

_STATUS = {
    "shredded": pb.SHRED_STATUS_SHREDDED,
    "already_shredded": pb.SHRED_STATUS_ALREADY_SHREDDED,
    "on_hold": pb.SHRED_STATUS_ON_HOLD,
    "not_found": pb.SHRED_STATUS_NOT_FOUND,
}


class SubjectServicer(pb_grpc.SubjectServiceServicer):
    def __init__(
        self, shredder: ShredService, admin_principals: list[str], access: AccessControl | None = None,
        consent: ConsentService | None = None,
    ) -> None:
        self._shredder, self._access, self._consent = shredder, access, consent
        self._admins = frozenset(admin_principals)

    def _caller(self, action: str = SHRED) -> Caller:
        principal = current_principal.get().name
        granted = self._access is not None and self._access.may(principal, action)
        if principal not in self._admins and not granted:
            raise PermissionDenied(f"this principal may not manage subjects (not in admin_principals, no {action!r} grant)")
        return Caller(principal, f"gen-{uuid.uuid4().hex}")

    def SetConsent(self, request: pb.SetConsentRequest, context: grpc.ServicerContext) -> pb.SetConsentResponse:
        try:
            changed = self._consent_service().set_consent(
                self._caller(ADMIN), request.subject_id, request.purpose, request.opted_out
            )
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "SetConsent")
        return pb.SetConsentResponse(changed=changed)

    def GetConsent(self, request: pb.GetConsentRequest, context: grpc.ServicerContext) -> pb.GetConsentResponse:
        try:
            purposes = self._consent_service().opt_outs(self._caller(ADMIN), request.subject_id)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "GetConsent")
        return pb.GetConsentResponse(opted_out_purposes=purposes)

    def _consent_service(self) -> ConsentService:
        if self._consent is None:
            raise PermissionDenied("consent is not served here")
        return self._consent

    def ShredSubjects(self, request: pb.ShredSubjectsRequest, context: grpc.ServicerContext) -> pb.ShredSubjectsResponse:
        try:
            results = self._shredder.shred_subjects(self._caller(), list(request.subject_ids), request.reason)
        except Exception as exc:  # noqa: BLE001 - mapped in one place
            abort_with(context, exc, "ShredSubjects")
        return pb.ShredSubjectsResponse(outcomes=[_outcome(r) for r in results])

    def ShredFields(self, request: pb.ShredFieldsRequest, context: grpc.ServicerContext) -> pb.ShredFieldsResponse:
        try:
            result = self._shredder.shred_fields(self._caller(), request.subject_id, list(request.fields), request.reason)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "ShredFields")
        return pb.ShredFieldsResponse(outcome=_outcome(result))

    def PlaceHold(self, request: pb.PlaceHoldRequest, context: grpc.ServicerContext) -> pb.PlaceHoldResponse:
        try:
            placed = self._shredder.place_hold(self._caller(), request.subject_id, request.case_id, request.reason)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "PlaceHold")
        return pb.PlaceHoldResponse(placed=placed)

    def ReleaseHold(self, request: pb.ReleaseHoldRequest, context: grpc.ServicerContext) -> pb.ReleaseHoldResponse:
        try:
            released = self._shredder.release_hold(self._caller(), request.subject_id, request.case_id)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "ReleaseHold")
        return pb.ReleaseHoldResponse(released=released)

    def VerifyReceipt(self, request: pb.VerifyReceiptRequest, context: grpc.ServicerContext) -> pb.VerifyReceiptResponse:
        try:
            self._caller()
            valid = self._shredder.verify_receipt(request.receipt, request.signature)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "VerifyReceipt")
        return pb.VerifyReceiptResponse(valid=valid)


def _outcome(result: ShredResult) -> pb.ShredOutcome:
    return pb.ShredOutcome(
        subject_id=result.subject_id, status=_STATUS[result.status], hold_case_ids=list(result.hold_case_ids),
        receipt=result.receipt, signature=result.signature,
    )
