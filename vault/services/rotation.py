"""KEK rotation: rotate in Vault (now or on a schedule), rewrap every stored wrapped key online
(vault.services.rewrap), retire old versions.

Trimming old versions is what makes database backups taken before a shred unrecoverable
(DESIGN §6), so it waits for the backup horizon and refuses while any row needs an old version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from vault.errors import RotationRefused
from vault.keys.admin import KekVersions, KeyAdmin
from vault.services.rewrap import RewrapReport, RewrapService
from vault.storage.rotation import RotationRepository

log = logging.getLogger("pdv.rotation")


@dataclass(frozen=True, slots=True)
class RotationStatus:
    """The KEK's versions in Vault and how many stored rows each version wraps."""

    kek: KekVersions
    data_keys: dict[int, int]
    secrets: dict[int, int]


@dataclass(frozen=True, slots=True)
class TrimReport:
    retired_below: int  # every version below this one is gone from Vault
    trimmed: bool  # False: there was nothing left to trim


class RotationService:
    """The admin's KEK lifecycle: rotate, schedule, rewrap, status, trim."""

    def __init__(
        self, repo: RotationRepository, admin: KeyAdmin, clock: Callable[[], datetime],
        backup_horizon: timedelta, batch_size: int = 1000, workers: int = 2,
    ) -> None:
        self._repo = repo
        self._admin = admin
        self._clock = clock
        self._horizon = backup_horizon
        self._rewrapper = RewrapService(repo, admin, batch_size, workers)

    def rotate(self) -> int:
        """Add a KEK version in Vault; returns it. Stored rows keep their version until a rewrap.

        Raises:
            KeyUnavailable: Vault sealed, unreachable, or the token may not rotate.
        """
        return self._admin.rotate()

    def status(self) -> RotationStatus:
        """The KEK's versions and the row counts per version in data_keys and wrapped_secrets.

        Raises:
            KeyUnavailable, StoreUnavailable.
        """
        return RotationStatus(self._admin.versions(), self._repo.key_counts(), self._repo.secret_counts())

    def rewrap(
        self, batch_size: int | None = None, on_total: Callable[[int], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> RewrapReport:
        """Rewrap every data key and wrapped secret below the latest KEK version (see RewrapService.rewrap).

        Raises:
            KeyUnavailable, StoreUnavailable: the rewrap stopped; running it again continues.
        """
        return self._rewrapper.rewrap(batch_size, on_total, on_progress)

    def schedule(self, period: timedelta | None) -> KekVersions:
        """Have Vault rotate the KEK by itself every `period` (None: stop); returns the new state.
        Servers with rewrap_interval_seconds > 0 then rewrap after each rotation on their own.

        Raises:
            ValueError: a period under an hour (Vault refuses them).
            KeyUnavailable: Vault unreachable or refused.
        """
        if period is not None and period < timedelta(hours=1):
            raise ValueError("the rotation period must be at least one hour (Vault's minimum)")
        self._admin.set_auto_rotate(period)
        return self._admin.versions()

    def trim(self, backup_horizon: timedelta | None = None) -> TrimReport:
        """Retire every KEK version below the latest: raise both minimum versions, then trim.

        Refuses (and changes nothing) while any row is wrapped below the latest version, or
        before the latest version is `backup_horizon` old (default: the configured horizon):
        until then a backup taken under an older version must stay restorable.

        Raises:
            RotationRefused: the message names the versions and rows, or the days remaining.
            KeyUnavailable, StoreUnavailable.
        """
        horizon = self._horizon if backup_horizon is None else backup_horizon
        kek = self._admin.versions()
        target = kek.latest
        if target <= max(kek.min_available, 1):
            return TrimReport(target, trimmed=False)
        self._refuse_if_referenced(target)
        superseded_at = kek.created.get(target)
        if superseded_at is None:
            raise RotationRefused(f"refusing to trim: Vault reports no creation time for KEK v{target}")
        age = self._clock() - superseded_at
        if age < horizon:
            raise RotationRefused(
                f"refusing to trim: KEK v{target - 1} was superseded by v{target} on "
                f"{superseded_at:%Y-%m-%d %H:%M} UTC, {_days(age)} days ago; the backup horizon is "
                f"{_days(horizon)} days, so backups that still need v{target - 1} may exist: "
                f"{_days(horizon - age)} days remain (trim from {superseded_at + horizon:%Y-%m-%d %H:%M} UTC)"
            )
        previous = (kek.min_decryption, kek.min_encryption)
        self._admin.set_min_versions(target, max(target, kek.min_encryption))
        # A server still holding a DEK wrapped before the rotation could have stored it since
        # the check above. Raising min_decryption_version is reversible; trimming is not.
        try:
            self._refuse_if_referenced(target, during_trim=True)
        except RotationRefused:
            self._admin.set_min_versions(*previous)
            raise
        self._admin.trim(target)
        log.info("KEK versions below v%d trimmed", target)
        return TrimReport(target, trimmed=True)

    def _refuse_if_referenced(self, target: int, during_trim: bool = False) -> None:
        old = [
            f"v{v}: {n} {what}"
            for what, counts in (("data keys", self._repo.key_counts()), ("wrapped secrets", self._repo.secret_counts()))
            for v, n in sorted(counts.items()) if v < target
        ]
        if old:
            when = " (they appeared while trimming; nothing was trimmed)" if during_trim else ""
            raise RotationRefused(
                f"refusing to trim: rows still reference KEK versions below v{target} "
                f"({', '.join(old)}){when}; run `pdv keys rewrap` first"
            )

    def measure_rewrap(self) -> float:
        """Rotate the KEK, rewrap every stored data key and return the rewrap rate in DEKs/s."""
        self.rotate()
        report = self.rewrap()
        return report.rewrapped / report.seconds if report.seconds > 0 else 0.0


def _days(span: timedelta) -> str:
    return f"{span.total_seconds() / 86400:.1f}"
