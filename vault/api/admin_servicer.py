"""AdminService over gRPC: requests to the use cases of vault/services/admin, results to messages.

Who may make each call, and its access-log entry, are decided there. The two long jobs
(Rewrap, Dispose) stream a progress message at most every fifth of a second, then the report.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pdv.v1 import admin_pb2 as pb
from pdv.v1 import admin_pb2_grpc as pb_grpc

from vault.api.auth import current_principal
from vault.api.status import abort_with
from vault.crl import RevocationList
from vault.errors import InvalidInput
from vault.policy import Policy
from vault.services.admin.progress import Finished
from vault.services.admin.service import AdminService
from vault.services.common import Caller
from vault.services.disposal import DisposalReport
from vault.services.rewrap import RewrapReport


class AdminServicer(pb_grpc.AdminServiceServicer):
    def __init__(self, service: AdminService, revocations: RevocationList | None = None) -> None:
        self._service = service
        self._revocations = revocations  # tls_crl_file: reloaded with the policy, as on SIGHUP

    @staticmethod
    def _caller() -> Caller:
        return Caller(current_principal.get().name, f"admin-{uuid.uuid4().hex}")

    def KeyStatus(self, request: pb.KeyStatusRequest, context: grpc.ServicerContext) -> pb.KeyStatusResponse:
        try:
            status = self._service.key_status(self._caller())
        except Exception as exc:  # noqa: BLE001 - mapped in one place
            abort_with(context, exc, "KeyStatus")
        out = pb.KeyStatusResponse(latest_version=status.latest, data_keys=status.data_keys,
                                   wrapped_secrets=status.secrets)
        kek = status.kek
        if kek is not None:
            out.vault_metadata = True
            out.min_decryption_version, out.min_encryption_version = kek.min_decryption, kek.min_encryption
            out.min_available_version = kek.min_available
            out.auto_rotate_period_seconds = int(kek.auto_rotate_period.total_seconds()) if kek.auto_rotate_period else 0
            out.versions.extend(pb.KekVersion(version=v, created_at=_timestamp(at)) for v, at in sorted(kek.created.items()))
        return out

    def RotateKek(self, request: pb.RotateKekRequest, context: grpc.ServicerContext) -> pb.RotateKekResponse:
        try:
            return pb.RotateKekResponse(latest_version=self._service.rotate_kek(self._caller()))
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "RotateKek")

    def ScheduleKekRotation(
        self, request: pb.ScheduleKekRotationRequest, context: grpc.ServicerContext
    ) -> pb.ScheduleKekRotationResponse:
        try:
            if request.period_seconds < 0:
                raise InvalidInput("period_seconds: must not be negative (0 turns the schedule off)")
            period = timedelta(seconds=request.period_seconds) if request.period_seconds else None
            kek = self._service.schedule_kek(self._caller(), period)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "ScheduleKekRotation")
        out = pb.ScheduleKekRotationResponse(
            auto_rotate_period_seconds=int(kek.auto_rotate_period.total_seconds()) if kek.auto_rotate_period else 0)
        if kek.next_rotation is not None:
            out.next_rotation.CopyFrom(_timestamp(kek.next_rotation))
        return out

    def TrimKek(self, request: pb.TrimKekRequest, context: grpc.ServicerContext) -> pb.TrimKekResponse:
        try:
            days = request.backup_horizon_days
            if days < 0 or days != days or days > 36500:
                raise InvalidInput("backup_horizon_days: must be between 0 (the server's) and 36500")
            report = self._service.trim_kek(self._caller(), timedelta(days=days) if days else None)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "TrimKek")
        return pb.TrimKekResponse(retired_below=report.retired_below, trimmed=report.trimmed)

    def Rewrap(self, request: pb.RewrapRequest, context: grpc.ServicerContext) -> Iterator[pb.RewrapResponse]:
        try:
            for event in self._service.rewrap(self._caller(), request.batch_size):
                if isinstance(event, Finished):
                    yield pb.RewrapResponse(report=_rewrap_report(event.result))
                else:
                    yield pb.RewrapResponse(progress=pb.RewrapProgress(total=event.total, done=event.done))
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "Rewrap")

    def RotateDek(self, request: pb.RotateDekRequest, context: grpc.ServicerContext) -> pb.RotateDekResponse:
        try:
            done = self._service.rotate_dek(self._caller(), request.subject_id)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "RotateDek")
        return pb.RotateDekResponse(subject_id=done.subject_id, old_versions=list(done.old_versions),
                                    new_version=done.new_version, values=done.values)

    def Dispose(self, request: pb.DisposeRequest, context: grpc.ServicerContext) -> Iterator[pb.DisposeResponse]:
        try:
            now = request.now.ToDatetime(tzinfo=timezone.utc) if request.HasField("now") else None
            for event in self._service.dispose(self._caller(), now, request.dry_run):
                if isinstance(event, Finished):
                    yield pb.DisposeResponse(report=_disposal_report(event.result))
                else:
                    yield pb.DisposeResponse(progress=pb.DisposeProgress(total=event.total, done=event.done))
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "Dispose")

    def VerifyAuditLog(
        self, request: pb.VerifyAuditLogRequest, context: grpc.ServicerContext
    ) -> pb.VerifyAuditLogResponse:
        try:
            report = self._service.verify_audit(self._caller())
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "VerifyAuditLog")
        if report is None:
            return pb.VerifyAuditLogResponse(intact=True, empty=True)
        return pb.VerifyAuditLogResponse(
            intact=report.ok, entries=report.entries, chains=report.chains, checkpoints=report.checkpoints,
            problems=[pb.AuditProblem(what=p.what, chain=p.chain, seq=p.seq, entry_id=p.entry_id, text=str(p))
                      for p in report.problems],
            unlisted=report.unlisted, notes=list(report.notes))

    def ListHolds(self, request: pb.ListHoldsRequest, context: grpc.ServicerContext) -> pb.ListHoldsResponse:
        try:
            holds = self._service.list_holds(self._caller(), request.subject_id or None)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "ListHolds")
        return pb.ListHoldsResponse(holds=[
            pb.LegalHold(subject_id=h.subject_id, case_id=h.case_id, reason=h.reason, placed_by=h.placed_by,
                         placed_at=_timestamp(h.placed_at)) for h in holds])

    def ReloadPolicy(self, request: pb.ReloadPolicyRequest, context: grpc.ServicerContext) -> pb.ReloadPolicyResponse:
        try:
            policy = self._service.reload_policy(self._caller())
            if self._revocations is not None:
                self._revocations.reload()
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "ReloadPolicy")
        principals, grants = _counts(policy)
        return pb.ReloadPolicyResponse(source=policy.source, principals=principals, grants=grants,
                                       warnings=list(policy.warnings))

    def CheckPolicy(self, request: pb.CheckPolicyRequest, context: grpc.ServicerContext) -> pb.CheckPolicyResponse:
        try:
            check = self._service.check_policy(self._caller(), request.policy_yaml)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "CheckPolicy")
        if check.policy is None:
            return pb.CheckPolicyResponse(valid=False, error=check.error)
        principals, grants = _counts(check.policy)
        return pb.CheckPolicyResponse(valid=True, warnings=list(check.policy.warnings), principals=principals,
                                      grants=grants)


def _counts(policy: Policy) -> tuple[int, int]:
    return len(policy.grants), sum(len(g) for g in policy.grants.values())


def _rewrap_report(r: RewrapReport) -> pb.RewrapReport:
    return pb.RewrapReport(latest_version=r.latest, rewrapped=r.rewrapped, skipped=r.skipped, failed=r.failed,
                           remaining=r.remaining, seconds=r.seconds)


def _disposal_report(r: DisposalReport) -> pb.DisposeReport:
    out = pb.DisposeReport(
        dry_run=r.dry_run, values_disposed=r.values_disposed, values_deidentified=r.values_deidentified,
        subjects_shredded=r.subjects_shredded, subjects_with_fields_shredded=r.subjects_with_fields_shredded,
        receipts=r.receipts, values_held=r.values_held, answers_pruned=r.answers_pruned,
        requests_deleted=r.requests_deleted,
        held=[pb.HeldSubject(subject_id=s, case_ids=cases) for s, cases in sorted(r.held.items())])
    out.now.CopyFrom(_timestamp(datetime.fromisoformat(r.now)))
    return out


def _timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc))  # SQLite reads back naive UTC
    return stamp
