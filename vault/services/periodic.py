"""A job the server runs every so often on a daemon thread (disposal, rewrap)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class PeriodicJob(Generic[T]):
    """Calls `run_once` every `interval` seconds until stopped. A failed run is logged (its
    error's type only) and retried at the next interval, so the server keeps serving."""

    name = "job"

    def __init__(self, interval: float, log: logging.Logger) -> None:
        self.interval, self._log = interval, log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"pdv-{self.name}", daemon=True)
        # What the metrics read: rounds finished, failed, and the last one's end, length and verdict.
        self.runs = 0
        self.failures = 0
        self.last_finished: float | None = None  # Unix time
        self.last_seconds: float | None = None
        self.last_ok: bool | None = None

    def start(self) -> None:
        self._thread.start()
        self._log.info("%s job: every %.0fs", self.name, self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_once(self) -> T | None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_round()

    def run_round(self) -> None:
        """One round, as the thread runs it: failures logged and counted, never raised."""
        started = time.monotonic()
        ok = True
        try:
            self.run_once()
        except Exception as exc:  # noqa: BLE001 - keep serving; the next run retries
            ok = False
            self.failures += 1
            self._log.error("%s run failed (%s); retrying in %.0fs", self.name, type(exc).__name__, self.interval)
        self.runs += 1
        self.last_seconds, self.last_finished, self.last_ok = time.monotonic() - started, time.time(), ok
