"""Rewrap: bring every stored wrapped key to the KEK's latest version, online.

Each chunk is read in a snapshot, rewrapped by Vault in one batch call and written back in its
own short transaction, conditional on the row being unchanged. It keeps no cursor of its own:
what is left is exactly the rows still below the latest KEK version, so after a crash (even
kill -9) running it again simply finishes the job.

Three callers: `pdv keys rewrap --local` with the admin token, AdminService's Rewrap and
RewrapJob inside `pdv serve`, both with the service token (which may rewrap, never rotate or
trim), so that a rotation — scheduled in Vault
or by hand — reaches the stored keys without anyone having to remember the second step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from vault.domain import WrappedKey
from vault.keys.provider import Rewrapper
from vault.services.periodic import PeriodicJob
from vault.storage.jobs import job_lock
from vault.storage.rotation import Rewrapped, RotationRepository, WrappedRow
from vault.storage.store import Store

log = logging.getLogger("pdv.rotation")

# Rows inserted behind the scan while a pass runs (e.g. by a server still holding DEKs wrapped
# before the rotation), or moved there by a concurrent update, are picked up by another pass,
# up to this many.
_MAX_PASSES = 3


@dataclass(frozen=True, slots=True)
class RewrapReport:
    latest: int  # the KEK version the rewrap brought rows to
    rewrapped: int  # data keys and secrets stored under the latest version
    skipped: int  # changed (shredded, rewrapped) concurrently; left as they were
    failed: int  # Vault could not rewrap them (tampered, or their version already retired)
    remaining: int  # rows still below `latest` afterwards
    seconds: float


class RewrapService:
    """Rewraps data_keys and wrapped_secrets, `batch_size` rows per Vault call and transaction,
    with up to `workers` chunks in flight (Vault and the database work while the next is read)."""

    def __init__(self, repo: RotationRepository, keys: Rewrapper, batch_size: int = 1000, workers: int = 2) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000")
        self._repo = repo
        self._keys = keys
        self._batch_size = batch_size
        self._workers = max(1, workers)

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
        latest = self._keys.latest_version()
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
            (new,) = self._keys.rewrap([WrappedKey(wrapped)])
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
        fresh = self._keys.rewrap([WrappedKey(r.wrapped) for r in rows])
        changes = [
            Rewrapped(r.subject_id, r.version, r.wrapped, new, r.position) for r, new in zip(rows, fresh) if new is not None
        ]
        failed = len(rows) - len(changes)
        if failed:
            # Versions only: subject ids stay out of the operational log (`pdv keys status` finds the rows).
            versions = sorted({WrappedKey(r.wrapped).kek_version for r, new in zip(rows, fresh) if new is None})
            log.warning("rewrap: Vault could not rewrap %d data key(s) wrapped under KEK version(s) %s",
                        failed, ", ".join(f"v{v}" for v in versions))
        stored = self._repo.replace_keys(changes)
        return stored, len(changes) - stored, failed


class RewrapJob(PeriodicJob[RewrapReport]):
    """Rewraps every `interval` seconds on a daemon thread, on one replica at a time (a database
    lock, as for disposal). A round with nothing below the latest version costs one Transit
    encrypt (to learn the version) and one indexed count. A failed round is logged and retried."""

    name = "rewrap"
    LOCK = b"PDVREWRP"

    def __init__(self, service: RewrapService, store: Store, interval: float) -> None:
        super().__init__(interval, log)
        self.service, self.store = service, store
        # For the metrics: keys left below the latest version (live during a round), keys
        # rewrapped by this replica so far, and the version the last round brought them to.
        self.remaining = 0
        self.rewrapped = 0
        self.latest_version: int | None = None

    def run_once(self) -> RewrapReport | None:
        """One round if no other replica is running one; None if one is."""
        with job_lock(self.store, self.LOCK) as mine:
            if not mine:
                log.info("rewrap: another replica is running it; skipped")
                return None

            def announced(total: int) -> None:
                self.remaining = total

            def done(count: int) -> None:
                self.remaining = max(0, self.remaining - count)

            report = self.service.rewrap(on_total=announced, on_progress=done)
            self.remaining, self.latest_version = report.remaining, report.latest
            self.rewrapped += report.rewrapped
        if report.rewrapped or report.failed or report.remaining:
            log.info(
                "rewrap to KEK v%d: %d rewrapped, %d skipped (changed concurrently), %d failed, %d still below",
                report.latest, report.rewrapped, report.skipped, report.failed, report.remaining,
            )
        return report
