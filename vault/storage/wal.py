"""SQLite's write-ahead log is checkpointed on a thread of its own, not by the writer.

By default the connection whose commit takes the log past 1,000 pages copies it into the
database file inside that commit, while it holds the one write lock: a batched tokenize
spent about a tenth of its time there. Here a background thread runs a PASSIVE checkpoint
shortly after commits (it never blocks readers or writers, and the driver releases the GIL
while it runs, so it uses another core). Writers keep a larger automatic checkpoint as a
backstop, should this thread fall behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

log = logging.getLogger("pdv.storage")

# Pages (4 KiB) of log after which a writer checkpoints itself, if this thread has not.
BACKSTOP_PAGES = 10_000
# After a checkpoint, wait at least this long for more commits to gather.
MIN_INTERVAL_SECONDS = 0.05


class WalCheckpointer:
    """Checkpoints one SQLite file after commits; `nudge()` after each commit, `close()` at the end."""

    def __init__(self, database: str) -> None:
        self._database = database
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="pdv-wal-checkpoint", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._database, isolation_level=None)
        except sqlite3.Error as exc:  # the writers' backstop checkpoints instead
            log.warning("no background WAL checkpoints: cannot open the database (%s)", type(exc).__name__)
            return
        try:
            while True:
                self._wake.wait()
                if self._closing:
                    return
                self._wake.clear()
                self._checkpoint(conn)
                time.sleep(MIN_INTERVAL_SECONDS)
        finally:
            conn.close()

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # the writer's backstop checkpoints instead; try again next time
            log.warning("background WAL checkpoint failed (%s)", type(exc).__name__)
