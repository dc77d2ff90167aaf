"""Expiry of events to token holders: events older than event_retention_seconds are deleted,
every holder's purge horizon raised first (a cursor below it is then OUT_OF_RANGE).

Every replica runs the job; two purges at once delete the same rows, and each horizon only
rises, so no lock is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from vault.services.periodic import PeriodicJob
from vault.storage import events as db
from vault.storage.store import Store

log = logging.getLogger("pdv.events")


def purge_expired(store: Store, retention: timedelta, clock: Callable[[], datetime]) -> int:
    """Delete the events committed more than `retention` ago; the number deleted."""
    with store.transaction() as tx:
        return db.purge(tx, clock() - retention)


class EventPurgeJob(PeriodicJob[int]):
    name = "event-purge"

    def __init__(self, store: Store, retention: timedelta, clock: Callable[[], datetime], interval: float) -> None:
        super().__init__(interval, log)
        self.store, self.retention, self.clock = store, retention, clock

    def run_once(self) -> int:
        purged = purge_expired(self.store, self.retention, self.clock)
        if purged:
            log.info("event purge: %d event(s) older than %.0f s deleted", purged, self.retention.total_seconds())
        return purged
