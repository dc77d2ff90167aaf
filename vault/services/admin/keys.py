"""The key operations of AdminService, run with the server's own Vault credentials.

What the server may do with which credential (README, "Admin API"):

- Its service token (deploy/openbao/pdv-service.hcl) may wrap, unwrap and rewrap with the
  KEK, never read its metadata, rotate, configure or trim it. So KeyStatus reports the
  latest version (learned from a wrap) and the stored rows per version; Rewrap and RotateDek
  run with it.
- Rotate, the rotation schedule, trim and Vault's version metadata need the admin policy
  (deploy/openbao/pdv-admin.hcl). The server uses it only when started with
  `kek_admin_over_api = true` and vault_admin_token(_file): a deployment that will not hand
  its server a token able to retire key versions keeps those three on `pdv keys … --local`.
- Over the API a trim can only lengthen the backup horizon, never shorten it: the horizon
  is what keeps backups restorable, and a caller holding only an API key must not be able
  to waive it. `pdv keys trim --local --backup-horizon-days` still can, with the admin token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from vault.errors import Conflict, ConfigError, InvalidInput
from vault.keys.admin import KekVersions
from vault.keys.provider import Rewrapper
from vault.services.dek_rotation import DekRotation, DekRotationService
from vault.services.rewrap import RewrapJob, RewrapReport, RewrapService
from vault.services.rotation import RotationService, TrimReport
from vault.storage.jobs import job_lock
from vault.storage.rotation import RotationRepository
from vault.storage.store import Store

NO_ADMIN_TOKEN = ("this server holds no Vault admin token (kek_admin_over_api is off), so it may not {what} the KEK: "
                  "run `pdv keys {command} --local` with the admin token, or start the server with "
                  "kek_admin_over_api = true and vault_admin_token_file")


@dataclass(frozen=True)
class KeyStatus:
    latest: int
    kek: KekVersions | None  # None: the server holds no admin token, so Vault's metadata is unknown
    data_keys: dict[int, int]
    secrets: dict[int, int]


class KeyOperations:
    """KEK status, rotate, schedule, rewrap and trim; DEK rotation of a subject."""

    def __init__(
        self, store: Store, service_keys: Rewrapper, rotation: RotationService | None, dek: DekRotationService,
        backup_horizon: timedelta, batch_size: int = 1000,
    ) -> None:
        self.store, self.keys, self.rotation, self.dek = store, service_keys, rotation, dek
        self.horizon = backup_horizon
        self.repo = RotationRepository(store)
        self.batch_size = min(batch_size, 1000)

    def status(self) -> KeyStatus:
        """The KEK's versions (Vault's metadata only with the admin token) and the rows per version.

        Raises:
            KeyUnavailable, StoreUnavailable.
        """
        if self.rotation is not None:
            full = self.rotation.status()
            return KeyStatus(full.kek.latest, full.kek, full.data_keys, full.secrets)
        return KeyStatus(self.keys.latest_version(), None, self.repo.key_counts(), self.repo.secret_counts())

    def rotate(self) -> int:
        """Add a KEK version; returns it. Raises ConfigError without the admin token."""
        return self._admin("rotate", "rotate").rotate()

    def schedule(self, period: timedelta | None) -> KekVersions:
        """Set Vault's rotation period (None: off). Raises InvalidInput for a period under an hour."""
        if period is not None and period < timedelta(hours=1):
            raise InvalidInput("period_seconds: Vault rotates at most hourly; give at least 3600, or 0 for off")
        return self._admin("schedule rotations of", "schedule").schedule(period)

    def trim(self, horizon: timedelta | None) -> TrimReport:
        """Retire versions below the latest once unused and `horizon` (at least the configured one) old.

        Raises:
            InvalidInput: a horizon shorter than the configured one.
            RotationRefused: rows still need an old version, or the horizon has not passed.
            ConfigError: no admin token.
        """
        if horizon is not None and horizon < self.horizon:
            raise InvalidInput(
                f"backup_horizon_days: over the API the backup horizon can only be lengthened (the server's is "
                f"{self.horizon.total_seconds() / 86400:g} days); shortening it needs `pdv keys trim --local`")
        return self._admin("trim", "trim").trim(horizon)

    def rewrap(self, batch_size: int, on_total: Callable[[int], None], on_progress: Callable[[int], None]) -> RewrapReport:
        """Rewrap every stored key below the latest version with the service token, on one
        replica at a time (the in-server rewrap job's lock).

        Raises:
            InvalidInput: batch size outside 1..1000.
            Conflict: another replica is rewrapping now.
            KeyUnavailable, StoreUnavailable: stopped; running it again continues.
        """
        batch = batch_size or self.batch_size
        if not 1 <= batch <= 1000:
            raise InvalidInput("batch_size: must be between 1 and 1000")
        with job_lock(self.store, RewrapJob.LOCK) as mine:
            if not mine:
                raise Conflict("another replica is rewrapping now; run the rewrap again once it is done")
            return RewrapService(self.repo, self.keys, batch, workers=2).rewrap(batch, on_total, on_progress)

    def rotate_dek(self, caller, subject_id: str) -> DekRotation:  # type: ignore[no-untyped-def]
        """See DekRotationService.rotate_subject (it logs its own success)."""
        return self.dek.rotate_subject(caller, subject_id)

    def _admin(self, what: str, command: str) -> RotationService:
        if self.rotation is None:
            raise ConfigError(NO_ADMIN_TOKEN.format(what=what, command=command))
        return self.rotation

