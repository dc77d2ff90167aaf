"""Lock files beside an SQLite database: the writer queue of its server processes, and job locks."""

from __future__ import annotations

import fcntl
import os
import threading

from vault.storage.engine import is_sqlite_file


def open_lock_file(database: str | None, suffix: str) -> int | None:
    """A private (0600) lock file `<database>.<suffix>` beside an SQLite database file, open
    for flock; None for an in-memory database, which no other process can open."""
    if not is_sqlite_file(database):
        return None
    return os.open(f"{database}.{suffix}", os.O_RDWR | os.O_CREAT, 0o600)


class SqliteWriterQueue:
    """Write transactions on one SQLite file, one at a time: this process's threads queue
    on a lock, and processes serving the same file (`processes` > 1) on an exclusive
    flock of a file beside it, so a waiting writer is woken the moment the lock is free
    instead of polling. SQLite's own locking still guards the data; writers that do not
    queue here (CLI commands) fall back to its busy handler.
    """

    def __init__(self, database: str | None) -> None:
        self._threads = threading.Lock()
        self._database = database
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _file(self) -> int | None:
        # Opened in the process that locks it: a descriptor inherited over fork shares its
        # lock with the parent, and would let both write at once.
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = open_lock_file(self._database, "writer-lock"), os.getpid()
        return self._fd

    def close(self) -> None:
        with self._threads:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None
