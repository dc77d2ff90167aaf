"""SubjectService: disposal, legal holds, consent, correction and the access report. Who may make each call is decided by
vault/services/subject_access.py (the scope of the caller's `shred` / `admin` grants, or
`admin_principals`), which also logs every refusal."""

from __future__ import annotations

import uuid
from datetime import timezone

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pdv.v1 import subject_pb2 as pb
from pdv.v1 import subject_pb2_grpc as pb_grpc

from vault.api.auth import current_principal
from vault.api.report_proto import report_message
from vault.api.status import abort_with
from vault.api.token_servicer import share
from vault.services.common import Caller
from vault.services.common import MAX_REQUEST_ID, require_label
from vault.services.consent import ConsentService
from vault.services.rights.correction import CorrectionService
from vault.services.rights.report import ReportService
from vault.services.shred import ShredService
from vault.services.runtime.budget import ItemBudget
from vault.services.shred_steps import ShredResult
from vault.services.subject_access import SubjectAccess

_STATUS = {
    "shredded": pb.SHRED_STATUS_SHREDDED,
    "already_shredded": pb.SHRED_STATUS_ALREADY_SHREDDED,
    "on_hold": pb.SHRED_STATUS_ON_HOLD,
    "not_found": pb.SHRED_STATUS_NOT_FOUND,
}


class SubjectServicer(pb_grpc.SubjectServiceServicer):
    def __init__(
        self, shredder: ShredService, gate: SubjectAccess, consent: ConsentService, corrections: CorrectionService,
        reports: ReportService, budget: ItemBudget | None = None,
    ) -> None:
        self._shredder, self._gate, self._consent, self._corrections = shredder, gate, consent, corrections
        self._reports = reports
        self._budget = budget or ItemBudget(1 << 62, 0)

    @staticmethod
    def _caller(request_id: str = "") -> Caller:
        return Caller(current_principal.get().name, request_id or f"gen-{uuid.uuid4().hex}")

    def CorrectValue(self, request: pb.CorrectValueRequest, context: grpc.ServicerContext) -> pb.CorrectValueResponse:
        try:
            if request.request_id:
                require_label("request_id", request.request_id, MAX_REQUEST_ID)
            caller = self._caller(request.request_id)
            self._gate.correct(caller, request.subject_id, request.field)
            values = self._corrections.correct_value(caller, request.subject_id, request.field, request.new_value,
                                                     request.reason, request.case_id or None)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "CorrectValue")
        return pb.CorrectValueResponse(values=[
            pb.CorrectedValue(purpose=v.purpose, token=v.token, token_changed=v.token_changed) for v in values])

    def ListCorrections(
        self, request: pb.ListCorrectionsRequest, context: grpc.ServicerContext
    ) -> pb.ListCorrectionsResponse:
        try:
            caller = self._caller()
            fields = self._gate.corrections_report(caller, request.subject_id)
            rows = self._corrections.corrections(caller, request.subject_id, fields)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "ListCorrections")
        return pb.ListCorrectionsResponse(corrections=[
            pb.Correction(field=r.field, purpose=r.purpose, token=r.token, corrected_at=_timestamp(r.corrected_at),
                          corrected_by=r.corrected_by, reason=r.reason, case_id=r.case_id or "",
                          request_id=r.request_id, old_value_fingerprint=r.old_fingerprint.hex())
            for r in rows])

    def GetAccessReport(
        self, request: pb.GetAccessReportRequest, context: grpc.ServicerContext
    ) -> pb.GetAccessReportResponse:
        answer: list[pb.GetAccessReportResponse] = []

        def answer_bytes(report) -> int:  # type: ignore[no-untyped-def]
            # The answer is built once, measured inside the service before the report is logged.
            answer[:] = [pb.GetAccessReportResponse(report=report_message(report))]
            return answer[0].ByteSize()

        try:
            caller = self._caller()
            views = self._gate.access_report(caller, request.subject_id)
            self._reports.access_report(caller, request.subject_id, views, request.case_id or None,
                                        request.include_values, answer_bytes)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "GetAccessReport")
        return answer[0]

    def SetConsent(self, request: pb.SetConsentRequest, context: grpc.ServicerContext) -> pb.SetConsentResponse:
        try:
            caller = self._caller()
            self._gate.set_consent(caller, request.subject_id, request.purpose)
            changed = self._consent.set_consent(caller, request.subject_id, request.purpose, request.opted_out,
                                                 request.case_id or None)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "SetConsent")
        return pb.SetConsentResponse(changed=changed)

    def GetConsent(self, request: pb.GetConsentRequest, context: grpc.ServicerContext) -> pb.GetConsentResponse:
        try:
            caller = self._caller()
            visible = self._gate.consent_report(caller, request.subject_id)
            purposes = self._consent.opt_outs(caller, request.subject_id, visible)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "GetConsent")
        return pb.GetConsentResponse(opted_out_purposes=purposes)

    def ShredSubjects(self, request: pb.ShredSubjectsRequest, context: grpc.ServicerContext) -> pb.ShredSubjectsResponse:
        try:
            with share(self._budget, context, "ShredSubjects", len(request.subject_ids)):
                caller, subject_ids = self._caller(), list(request.subject_ids)
                self._gate.shred_subjects(caller, subject_ids)
                results = self._shredder.shred_subjects(caller, subject_ids, request.reason, request.case_id or None)
        except Exception as exc:  # noqa: BLE001 - mapped in one place
            abort_with(context, exc, "ShredSubjects")
        return pb.ShredSubjectsResponse(outcomes=[_outcome(r) for r in results])

    def ShredFields(self, request: pb.ShredFieldsRequest, context: grpc.ServicerContext) -> pb.ShredFieldsResponse:
        try:
            with share(self._budget, context, "ShredFields", len(request.fields)):
                caller, fields = self._caller(), list(request.fields)
                self._gate.shred_fields(caller, request.subject_id, fields)
                result = self._shredder.shred_fields(caller, request.subject_id, fields, request.reason,
                                                     request.case_id or None)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "ShredFields")
        return pb.ShredFieldsResponse(outcome=_outcome(result))

    def PlaceHold(self, request: pb.PlaceHoldRequest, context: grpc.ServicerContext) -> pb.PlaceHoldResponse:
        try:
            caller = self._caller()
            self._gate.hold(caller, "hold", request.subject_id)
            placed = self._shredder.place_hold(caller, request.subject_id, request.case_id, request.reason)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "PlaceHold")
        return pb.PlaceHoldResponse(placed=placed)

    def ReleaseHold(self, request: pb.ReleaseHoldRequest, context: grpc.ServicerContext) -> pb.ReleaseHoldResponse:
        try:
            caller = self._caller()
            self._gate.hold(caller, "release_hold", request.subject_id)
            released = self._shredder.release_hold(caller, request.subject_id, request.case_id)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "ReleaseHold")
        return pb.ReleaseHoldResponse(released=released)

    def VerifyReceipt(self, request: pb.VerifyReceiptRequest, context: grpc.ServicerContext) -> pb.VerifyReceiptResponse:
        try:
            self._gate.verify_receipt(self._caller(), request.receipt)
            valid = self._shredder.verify_receipt(request.receipt, request.signature)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "VerifyReceipt")
        return pb.VerifyReceiptResponse(valid=valid)


def _outcome(result: ShredResult) -> pb.ShredOutcome:
    return pb.ShredOutcome(
        subject_id=result.subject_id, status=_STATUS[result.status], hold_case_ids=list(result.hold_case_ids),
        receipt=result.receipt, signature=result.signature,
    )


def _timestamp(at) -> Timestamp:  # type: ignore[no-untyped-def]
    stamp = Timestamp()
    stamp.FromDatetime(at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc))  # SQLite reads back naive UTC
    return stamp
