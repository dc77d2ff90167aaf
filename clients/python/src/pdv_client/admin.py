"""Administering PDV (pdv.v1 AdminService), as ``PdvClient.admin``.

    with PdvClient(target, api_key=admin_key) as pdv:
        pdv.admin.key_status().data_keys          # {KEK version: stored data keys}
        pdv.admin.rewrap(on_progress=lambda total, done: print(done, "/", total))
        report = pdv.admin.dispose(dry_run=True)
        pdv.admin.verify_audit_log().intact

Each call needs its own grant on the server (``keys``, ``dispose``, ``audit``, ``holds``,
``policy``) or a place in ``admin_principals``; without it PermissionDenied. Rotating,
scheduling and trimming the KEK need a server started with ``kek_admin_over_api``; others
raise FailedPrecondition saying so. Rewrap and dispose stream progress and have no
deadline unless ``timeout`` is given: they run as long as the data needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import grpc

from pdv.v1 import admin_pb2, admin_pb2_grpc
from pdv_client.errors import Internal, error_for_status

if TYPE_CHECKING:
    from pdv_client.client import PdvClient

__all__ = [
    "Admin", "KeyStatus", "KekSchedule", "RewrapReport", "TrimResult", "DekRotation", "DisposalReport",
    "AuditProblem", "AuditVerification", "LegalHold", "PolicyInfo", "PolicyCheck",
]

Progress = Callable[[int, int], None]  # (total, done)


@dataclass(frozen=True)
class KeyStatus:
    """The KEK's versions and the stored rows per version.

    ``vault_metadata`` is False when the server holds no admin token: then only
    ``latest_version`` and the row counts are known, the rest is zero or empty."""

    latest_version: int
    vault_metadata: bool
    min_decryption_version: int
    min_encryption_version: int
    min_available_version: int
    auto_rotate_period: timedelta | None
    versions: dict[int, datetime]
    data_keys: dict[int, int]
    wrapped_secrets: dict[int, int]

    @property
    def rows_behind(self) -> int:
        """Stored rows wrapped below the latest version (what a rewrap would do)."""
        return sum(n for counts in (self.data_keys, self.wrapped_secrets)
                   for v, n in counts.items() if v < self.latest_version)


@dataclass(frozen=True)
class KekSchedule:
    auto_rotate_period: timedelta | None
    next_rotation: datetime | None


@dataclass(frozen=True)
class RewrapReport:
    latest_version: int
    rewrapped: int
    skipped: int
    failed: int
    remaining: int
    seconds: float


@dataclass(frozen=True)
class TrimResult:
    retired_below: int
    trimmed: bool


@dataclass(frozen=True)
class DekRotation:
    subject_id: str
    old_versions: tuple[int, ...]
    new_version: int
    values: int


@dataclass(frozen=True)
class DisposalReport:
    """What a disposal run did (or, dry, would do): counts, subject ids and case ids only."""

    now: datetime
    dry_run: bool
    values_disposed: dict[str, int]
    values_deidentified: dict[str, int]
    subjects_shredded: int
    subjects_with_fields_shredded: int
    receipts: int
    held: dict[str, list[str]]
    values_held: int
    answers_pruned: int
    requests_deleted: int

    def to_json(self) -> dict[str, Any]:
        """The report as `pdv dispose` prints it."""
        return {
            "now": self.now.isoformat(), "dry_run": self.dry_run,
            "values_disposed": dict(sorted(self.values_disposed.items())),
            "values_deidentified": dict(sorted(self.values_deidentified.items())),
            "total_disposed": sum(self.values_disposed.values()),
            "subjects_shredded": self.subjects_shredded,
            "subjects_with_fields_shredded": self.subjects_with_fields_shredded,
            "receipts": self.receipts,
            "subjects_held": len(self.held), "values_held": self.values_held,
            "held": dict(sorted(self.held.items())),
            "answers_pruned": self.answers_pruned,
            "requests_deleted": self.requests_deleted,
        }


@dataclass(frozen=True)
class AuditProblem:
    what: str
    chain: str | None
    seq: int | None
    entry_id: int | None
    text: str  # the problem as one line, located

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class AuditVerification:
    intact: bool
    empty: bool  # no log yet
    entries: int
    chains: int
    checkpoints: int
    problems: tuple[AuditProblem, ...] = ()
    unlisted: int = 0  # problems found beyond those listed
    notes: tuple[str, ...] = ()

    @property
    def problem_count(self) -> int:
        return len(self.problems) + self.unlisted


@dataclass(frozen=True)
class LegalHold:
    subject_id: str
    case_id: str
    reason: str = field(repr=False)  # free text as given when placed
    placed_by: str = ""
    placed_at: datetime | None = None


@dataclass(frozen=True)
class PolicyInfo:
    source: str
    principals: int
    grants: int
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class PolicyCheck:
    valid: bool
    error: str
    warnings: tuple[str, ...]
    principals: int
    grants: int


class Admin:
    """The AdminService calls of one PdvClient (same channel, key and error mapping)."""

    def __init__(self, client: PdvClient) -> None:
        self._client = client
        self._stub = admin_pb2_grpc.AdminServiceStub(client._channel)  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        return "Admin(<client>)"

    def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        return self._client._call(method, request, "", timeout)

    # -- keys ------------------------------------------------------------------

    def key_status(self, *, timeout: float | None = None) -> KeyStatus:
        """The KEK's versions (Vault's metadata if the server may read it) and rows per version."""
        r = self._call(self._stub.KeyStatus, admin_pb2.KeyStatusRequest(), timeout)
        return KeyStatus(
            r.latest_version, r.vault_metadata, r.min_decryption_version, r.min_encryption_version,
            r.min_available_version, timedelta(seconds=r.auto_rotate_period_seconds) if r.auto_rotate_period_seconds else None,
            {v.version: _when(v.created_at) for v in r.versions}, dict(r.data_keys), dict(r.wrapped_secrets))

    def rotate_kek(self, *, timeout: float | None = None) -> int:
        """Add a KEK version; returns the new latest version. Stored keys keep theirs until a rewrap."""
        return int(self._call(self._stub.RotateKek, admin_pb2.RotateKekRequest(), timeout).latest_version)

    def schedule_kek_rotation(self, period: timedelta | None, *, timeout: float | None = None) -> KekSchedule:
        """Have Vault rotate the KEK every `period` (at least an hour); None stops it."""
        seconds = int(period.total_seconds()) if period is not None else 0
        if period is not None and seconds <= 0:
            raise ValueError("period must be positive, or None to stop rotating")
        r = self._call(self._stub.ScheduleKekRotation, admin_pb2.ScheduleKekRotationRequest(period_seconds=seconds),
                       timeout)
        return KekSchedule(timedelta(seconds=r.auto_rotate_period_seconds) if r.auto_rotate_period_seconds else None,
                           _when(r.next_rotation) if r.HasField("next_rotation") else None)

    def rewrap(self, *, batch_size: int = 1000, on_progress: Progress | None = None,
               timeout: float | None = None) -> RewrapReport:
        """Rewrap every stored key below the latest KEK version; `on_progress(total, done)` as it goes."""
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000")
        for message in self._stream(self._stub.Rewrap, admin_pb2.RewrapRequest(batch_size=batch_size), timeout):
            if message.HasField("report"):
                r = message.report
                return RewrapReport(r.latest_version, r.rewrapped, r.skipped, r.failed, r.remaining, r.seconds)
            if on_progress is not None:
                on_progress(message.progress.total, message.progress.done)
        raise Internal("the rewrap stream ended without a report")

    def trim_kek(self, *, backup_horizon_days: float | None = None, timeout: float | None = None) -> TrimResult:
        """Retire KEK versions below the latest once no row needs them and the backup horizon
        (the server's, or a longer one given here) has passed; FailedPrecondition says why not."""
        request = admin_pb2.TrimKekRequest(backup_horizon_days=backup_horizon_days or 0.0)
        r = self._call(self._stub.TrimKek, request, timeout)
        return TrimResult(r.retired_below, r.trimmed)

    def rotate_dek(self, subject_id: str, *, timeout: float | None = None) -> DekRotation:
        """Re-encrypt the subject's values under a fresh data key; its tokens stay."""
        r = self._call(self._stub.RotateDek, admin_pb2.RotateDekRequest(subject_id=subject_id), timeout)
        return DekRotation(r.subject_id, tuple(r.old_versions), r.new_version, r.values)

    # -- disposal, audit, holds, policy ---------------------------------------

    def dispose(self, *, dry_run: bool = False, now: datetime | None = None, on_progress: Progress | None = None,
                timeout: float | None = None) -> DisposalReport:
        """Dispose of every value past its retention (legal holds excepted), or with `dry_run`
        report what would go; `now` disposes as of another time (a future one only dry)."""
        request = admin_pb2.DisposeRequest(dry_run=dry_run)
        if now is not None:
            request.now.FromDatetime(now if now.tzinfo else now.replace(tzinfo=timezone.utc))
        for message in self._stream(self._stub.Dispose, request, timeout):
            if message.HasField("report"):
                r = message.report
                return DisposalReport(
                    _when(r.now), r.dry_run, dict(r.values_disposed), dict(r.values_deidentified), r.subjects_shredded,
                    r.subjects_with_fields_shredded, r.receipts, {h.subject_id: list(h.case_ids) for h in r.held},
                    r.values_held, r.answers_pruned, r.requests_deleted)
            if on_progress is not None:
                on_progress(message.progress.total, message.progress.done)
        raise Internal("the disposal stream ended without a report")

    def verify_audit_log(self, *, timeout: float | None = 600.0) -> AuditVerification:
        """Recompute every access-log chain and check the signed checkpoints (default deadline 10 min)."""
        r = self._call(self._stub.VerifyAuditLog, admin_pb2.VerifyAuditLogRequest(), timeout)
        return AuditVerification(
            r.intact, r.empty, r.entries, r.chains, r.checkpoints,
            tuple(AuditProblem(p.what, p.chain if p.HasField("chain") else None, p.seq if p.HasField("seq") else None,
                               p.entry_id if p.HasField("entry_id") else None, p.text) for p in r.problems),
            r.unlisted, tuple(r.notes))

    def list_holds(self, subject_id: str | None = None, *, timeout: float | None = None) -> list[LegalHold]:
        """The legal holds in force (of one subject), oldest first."""
        r = self._call(self._stub.ListHolds, admin_pb2.ListHoldsRequest(subject_id=subject_id or ""), timeout)
        return [LegalHold(h.subject_id, h.case_id, h.reason, h.placed_by, _when(h.placed_at)) for h in r.holds]

    def reload_policy(self, *, timeout: float | None = None) -> PolicyInfo:
        """Make the server re-read its policy file; FailedPrecondition (naming the line) if it is invalid."""
        r = self._call(self._stub.ReloadPolicy, admin_pb2.ReloadPolicyRequest(), timeout)
        return PolicyInfo(r.source, r.principals, r.grants, tuple(r.warnings))

    def check_policy(self, policy_yaml: str, *, timeout: float | None = None) -> PolicyCheck:
        """Validate a policy file's text against the server's catalog, strictly."""
        r = self._call(self._stub.CheckPolicy, admin_pb2.CheckPolicyRequest(policy_yaml=policy_yaml), timeout)
        return PolicyCheck(r.valid, r.error, tuple(r.warnings), r.principals, r.grants)

    def _stream(self, method: Any, request: Any, timeout: float | None) -> Iterator[Any]:
        if self._client._closed:
            raise ValueError("PdvClient is closed")
        try:
            yield from method(request, timeout=timeout, metadata=self._client._metadata)
        except grpc.RpcError as err:
            raise error_for_status(err, request_id="") from err


def _when(stamp: Any) -> datetime:
    return stamp.ToDatetime(tzinfo=timezone.utc)
