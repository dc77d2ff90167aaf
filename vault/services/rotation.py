"""KEK rotation: rotate in Vault, rewrap every stored wrapped key online, retire old versions.

The rewrap runs next to the live server: each chunk is read in a snapshot, rewrapped by Vault in
one batch call and written back in its own short transaction, conditional on the row being
unchanged. It keeps no cursor of its own: what is left is exactly the rows still below the
latest KEK version, so after a crash (even kill -9) running it again simply finishes the job.

Trimming old versions is what makes database backups taken before a shred unrecoverable
(DESIGN §6), so it waits for the backup horizon and refuses while any row needs an old version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from vault.domain import WrappedKey
from vault.errors import RotationRefused
from vault.keys.admin import KekVersions, KeyAdmin
from vault.storage.rotation import Rewrapped, RotationRepository, WrappedRow

log = logging.getLogger("pdv.rotation")

# Rows inserted behind the scan while a pass runs (e.g. by a server still holding DEKs wrapped
# before the rotation), or moved there by a concurrent update, are picked up by another pass,
# up to this many.
_MAX_PASSES = 3


@dataclass(frozen=True, slots=True)
class RotationStatus:
    """The KEK's versions in Vault and how many stored rows each version wraps."""

    kek: KekVersions
    data_keys: dict[int, int]
    secrets: dict[int, int]


@dataclass(frozen=True, slots=True)
class RewrapReport:
    latest: int  # the KEK version the rewrap brought rows to
    rewrapped: int  # data keys and secrets stored under the latest version
    skipped: int  # changed (shredded, rewrapped) concurrently; left as they were
    failed: int  # Vault could not rewrap them (tampered, or their version already retired)
    remaining: int  # rows still below `latest` afterwards
    seconds: float


@dataclass(frozen=True, slots=True)
class TrimReport:
    retired_below: int  # every version below this one is gone from Vault
    trimmed: bool  # False: there was nothing left to trim


class RotationService:
    """The admin's KEK lifecycle: rotate, rewrap, status, trim."""

    def __init__(
        self, repo: RotationRepository, admin: KeyAdmin, clock: Callable[[], datetime],
        backup_horizon: timedelta, batch_size: int = 1000, workers: int = 2,
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000")
        self._repo = repo
        self._admin = admin
        self._clock = clock
        self._horizon = backup_horizon
        self._batch_size = batch_size
        self._workers = max(1, workers)

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
        """Rewrap every data key and wrapped secret below the latest KEK version.

        `on_total(n)` announces n more rows to do (once per pass), `on_progress(n)` that n are done.

        Raises:
            KeyUnavailable, StoreUnavailable: the rewrap stopped; whatever was written stays
                written, and running it again continues where it stopped.
        """
        batch = min(batch_size or self._batch_size, 1000)
        if batch < 1:
            raise ValueError("batch_size must be at least 1")
        started = time.perf_counter()
        latest = self._admin.versions().latest
        totals = [0, 0, 0]  # rewrapped, skipped, failed
        for _ in range(_MAX_PASSES):
            todo = self._repo.count_keys_below(latest)
            if not todo:
                break
            if on_total:
                on_total(todo)
            done = self._rewrap_pass(latest, batch, on_progress)
            totals = [a + b for a, b in zip(totals, done)]
            if done[0] == 0:
                break  # nothing moved: what is left failed or keeps changing; say so below
        for name, wrapped in self._repo.secrets():
            if WrappedKey(wrapped).kek_version >= latest:
                continue
            (new,) = self._admin.rewrap([WrappedKey(wrapped)])
            if new is None:
                log.warning("rewrap: Vault could not rewrap the wrapped secret %s", name)
                totals[2] += 1
            elif self._repo.replace_secret(name, wrapped, new):
                totals[0] += 1
            else:
                totals[1] += 1
        remaining = self._repo.count_keys_below(latest) + sum(
            n for v, n in self._repo.secret_counts().items() if v < latest
        )
        return RewrapReport(latest, totals[0], totals[1], totals[2], remaining, time.perf_counter() - started)

    def _rewrap_pass(
        self, latest: int, batch: int, on_progress: Callable[[int], None] | None
    ) -> tuple[int, int, int]:
        # The next chunk is read while Vault and the database work on the previous ones:
        # rewrap and write overlap, and chunks are independent, so their order does not matter.
        totals = [0, 0, 0]
        pending: list[Future[tuple[int, int, int]]] = []

        def collect(future: Future[tuple[int, int, int]]) -> None:
            result = future.result()
            for i, n in enumerate(result):
                totals[i] += n
            if on_progress:
                on_progress(sum(result))

        with ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="pdv-rewrap") as pool:
            try:
                after: tuple | None = None
                while True:
                    rows = self._repo.keys_below(latest, after, batch)
                    if not rows:
                        break
                    after = rows[-1].position
                    pending.append(pool.submit(self._rewrap_chunk, rows))
                    while len(pending) > self._workers:
                        collect(pending.pop(0))
                while pending:
                    collect(pending.pop(0))
            finally:
                for future in pending:
                    future.cancel()
        return totals[0], totals[1], totals[2]

    def _rewrap_chunk(self, rows: list[WrappedRow]) -> tuple[int, int, int]:
        """Rewrap one chunk in one Vault call and store it in one transaction: (stored, skipped, failed)."""
        fresh = self._admin.rewrap([WrappedKey(r.wrapped) for r in rows])
        changes = [
            Rewrapped(r.subject_id, r.version, r.wrapped, new, r.position) for r, new in zip(rows, fresh) if new is not None
        ]
        failed = len(rows) - len(changes)
        if failed:
            # Not which subjects: the operational log carries no subject ids.
            versions = sorted({WrappedKey(r.wrapped).kek_version for r, new in zip(rows, fresh) if new is None})
            log.warning("rewrap: Vault could not rewrap %d data key(s) wrapped under KEK version(s) %s",
                        failed, ", ".join(f"v{v}" for v in versions))
        stored = self._repo.replace_keys(changes)
        return stored, len(changes) - stored, failed

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
