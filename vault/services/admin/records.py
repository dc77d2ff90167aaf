"""Disposal, audit verification, legal holds and the policy, as AdminService runs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from vault.catalog import Catalog
from vault.errors import Conflict, ConfigError, InvalidInput
from vault.keys.provider import Signer
from vault.policy import Policy, PolicyHolder, parse_policy
from vault.services.audit import CheckpointFile
from vault.services.audit_verify import VerifyReport, verify_log
from vault.services.disposal import DisposalReport, DisposalService
from vault.services.tokenize_model import require_subject_id
from vault.storage import disposal as disposal_db
from vault.storage import lifecycle
from vault.storage.audit_log import AuditRepository
from vault.storage.store import Store

MAX_POLICY_BYTES = 1 << 20
MAX_HOLDS = 10_000  # listed per call; a city's open litigation holds are far fewer


@dataclass(frozen=True)
class Hold:
    subject_id: str
    case_id: str
    reason: str
    placed_by: str
    placed_at: datetime


@dataclass(frozen=True)
class PolicyCheck:
    valid: bool
    error: str = ""
    policy: Policy | None = None


class RecordOperations:
    def __init__(
        self, store: Store, disposal: Callable[[], DisposalService], catalog: Catalog, policy: PolicyHolder,
        signer: Signer, audit_key: Callable[[], bytes | None], audit_sink: Callable[[], CheckpointFile],
        clock: Callable[[], datetime], processes: int = 1,
    ) -> None:
        self.store, self._disposal, self.catalog, self.policy = store, disposal, catalog, policy
        self.signer, self._audit_key, self._audit_sink, self.clock = signer, audit_key, audit_sink, clock
        self.processes = processes

    def dispose(
        self, now: datetime | None, dry_run: bool, on_total: Callable[[int], None], on_progress: Callable[[int], None],
    ) -> DisposalReport:
        """A disposal run (or a dry run) as of `now`, on one replica at a time (the scheduled job's lock).

        Raises:
            InvalidInput: a `now` in the future without dry_run.
            Conflict: another replica is disposing now.
            KeyUnavailable, StoreUnavailable: stopped; batches done stay done, a new run continues.
        """
        if now is not None and not dry_run and now > self.clock():
            raise InvalidInput("now: a time in the future is only allowed with dry_run")
        service = self._disposal()
        with disposal_db.disposal_lock(self.store) as mine:
            if not mine:
                raise Conflict("another replica is running disposal now; run it again once it is done")
            return service.dispose(now, dry_run, on_total=on_total, on_progress=on_progress)

    def verify_audit(self) -> VerifyReport | None:
        """The access log verified (None: no index root yet, so no log).

        Raises:
            ConfigError: no audit_checkpoint_file and audit_external_record not set to false.
            KeyUnavailable, StoreUnavailable.
        """
        sink = self._audit_sink()  # before anything is read: the config must say where the external record is
        key = self._audit_key()
        if key is None:
            return None
        return verify_log(AuditRepository(self.store), key, self.signer, sink)

    def holds(self, subject_id: str | None) -> list[Hold]:
        """The legal holds in force (of one subject), oldest first, at most MAX_HOLDS."""
        if subject_id is not None:
            require_subject_id(subject_id)
        with self.store.snapshot() as tx:
            rows = lifecycle.holds_in_force(tx, subject_id, MAX_HOLDS)
        return [Hold(*row) for row in rows]

    def reload_policy(self) -> Policy:
        """Re-read policy_path, as SIGHUP does; on any error the policy in force stays.

        Raises:
            ConfigError: invalid file (named, with the line), no policy file (development
                policy), or several worker processes (a call reaches one of them).
        """
        if self.processes > 1:
            raise ConfigError(f"this server runs {self.processes} worker processes and a call reaches one of them: "
                              "reload every worker with `pdv policy reload --pid` (SIGHUP to the parent)")
        return self.policy.reload()

    def check_policy(self, text: str) -> PolicyCheck:
        """Validate a policy file's text against the server's catalog, strictly (as `pdv policy check`)."""
        if len(text.encode("utf-8")) > MAX_POLICY_BYTES:
            raise InvalidInput(f"policy_yaml: at most {MAX_POLICY_BYTES} bytes")
        try:
            return PolicyCheck(True, policy=parse_policy(text, self.catalog, "<request>", strict=True))
        except ConfigError as exc:
            return PolicyCheck(False, error=str(exc))
