"""AdminService: each call allowed by its duty's grant, run, and logged (access.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TypeVar

from vault.keys.admin import KekVersions
from vault.policy import AUDIT, DISPOSE, HOLDS, KEYS, POLICY, Policy
from vault.services.admin.access import OK, AdminAccess, outcome_of
from vault.services.admin.keys import KeyOperations, KeyStatus
from vault.services.admin.progress import Finished, Tick, streamed
from vault.services.admin.records import Hold, PolicyCheck, RecordOperations
from vault.services.audit_verify import VerifyReport
from vault.services.common import Caller
from vault.services.dek_rotation import DekRotation
from vault.services.disposal import DisposalReport
from vault.services.rewrap import RewrapReport
from vault.services.rotation import TrimReport
from vault.services.tokenize_model import is_subject_id

R = TypeVar("R")

# The access log's purpose column for each duty.
KEY_MANAGEMENT, DISPOSAL, AUDITING, LEGAL_HOLD, POLICY_ADMIN = "key_management", "disposal", "audit", "legal_hold", "policy"
CANCELLED = "cancelled"


class AdminService:
    """The operator's calls. Every method raises PermissionDenied (logged) without its grant."""

    def __init__(self, access: AdminAccess, keys: KeyOperations, records: RecordOperations) -> None:
        self.access, self.keys, self.records = access, keys, records

    def key_status(self, caller: Caller) -> KeyStatus:
        """The KEK's versions and the stored rows per version (`keys`)."""
        with self.access.call(caller, KEYS, "kek_status", KEY_MANAGEMENT):
            return self.keys.status()

    def rotate_kek(self, caller: Caller) -> int:
        """Add a KEK version (`keys`; the server needs kek_admin_over_api). Returns it."""
        with self.access.call(caller, KEYS, "kek_rotate", KEY_MANAGEMENT):
            return self.keys.rotate()

    def schedule_kek(self, caller: Caller, period: timedelta | None) -> KekVersions:
        """Set Vault's rotation period, None for off (`keys`; kek_admin_over_api)."""
        with self.access.call(caller, KEYS, "kek_schedule", KEY_MANAGEMENT):
            return self.keys.schedule(period)

    def trim_kek(self, caller: Caller, horizon: timedelta | None) -> TrimReport:
        """Retire old KEK versions past the backup horizon (`keys`; kek_admin_over_api)."""
        with self.access.call(caller, KEYS, "kek_trim", KEY_MANAGEMENT):
            return self.keys.trim(horizon)

    def rewrap(self, caller: Caller, batch_size: int) -> Iterator[Tick | Finished[RewrapReport]]:
        """Rewrap stored keys to the latest KEK version (`keys`): progress ticks, then the report.
        The grant is checked now, before the first tick is asked for."""
        self.access.allow(caller, KEYS, "rewrap", KEY_MANAGEMENT)
        return self._logged(caller, "rewrap", KEY_MANAGEMENT,
                            streamed(lambda total, done: self.keys.rewrap(batch_size, total, done), name="pdv-rewrap"))

    def rotate_dek(self, caller: Caller, subject_id: str) -> DekRotation:
        """Re-encrypt one subject's values under a fresh DEK (`keys`)."""
        subject = subject_id if is_subject_id(subject_id) else None
        with self.access.call(caller, KEYS, "rotate_dek", KEY_MANAGEMENT, subject, log_ok=False):
            return self.keys.rotate_dek(caller, subject_id)

    def dispose(
        self, caller: Caller, now: datetime | None, dry_run: bool
    ) -> Iterator[Tick | Finished[DisposalReport]]:
        """Retention disposal, or a dry run (`dispose`): progress ticks, then the report."""
        action = "dispose_dry_run" if dry_run else "dispose"
        self.access.allow(caller, DISPOSE, action, DISPOSAL)
        return self._logged(caller, action, DISPOSAL, streamed(
            lambda total, done: self.records.dispose(now, dry_run, total, done), name="pdv-dispose"))

    def verify_audit(self, caller: Caller) -> VerifyReport | None:
        """Verify every access-log chain and checkpoint (`audit`); None if there is no log yet.
        The call's own entry is written before the walk, so the walk covers it."""
        self.access.allow(caller, AUDIT, "audit_verify", AUDITING)
        self.access.record(caller, "audit_verify", AUDITING, OK)
        return self.records.verify_audit()

    def list_holds(self, caller: Caller, subject_id: str | None) -> list[Hold]:
        """The legal holds in force (`holds`)."""
        subject = subject_id if subject_id and is_subject_id(subject_id) else None
        with self.access.call(caller, HOLDS, "list_holds", LEGAL_HOLD, subject):
            return self.records.holds(subject_id)

    def reload_policy(self, caller: Caller) -> Policy:
        """Re-read the policy file (`policy`). Judged by the policy in force before the reload."""
        with self.access.call(caller, POLICY, "policy_reload", POLICY_ADMIN):
            return self.records.reload_policy()

    def check_policy(self, caller: Caller, text: str) -> PolicyCheck:
        """Validate a policy text against the server's catalog (`policy`)."""
        with self.access.call(caller, POLICY, "policy_check", POLICY_ADMIN):
            return self.records.check_policy(text)

    def _logged(self, caller: Caller, action: str, purpose: str, ticks: Iterator[Tick | Finished[R]]
                ) -> Iterator[Tick | Finished[R]]:
        # The entry is written before the report is sent: once the caller has the report it
        # may stop reading, and the call would end before a later entry.
        finished = False
        try:
            for event in ticks:
                if isinstance(event, Finished):
                    self.access.record(caller, action, purpose, OK)
                    finished = True
                yield event
        except GeneratorExit:
            if not finished:  # the caller went away; the job runs on to its end (progress.py)
                self.access.record(caller, action, purpose, CANCELLED)
            raise
        except BaseException as exc:
            self.access.record(caller, action, purpose, outcome_of(exc))
            raise
