"""One background job of a kind at a time across replicas (disposal, rewrap)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from vault.storage.sqlite_locks import open_lock_file
from vault.storage.store import Store


def lock_key(name: bytes) -> int:
    """The 64-bit advisory lock key of a job: its 8-byte name as an integer."""
    if len(name) != 8:
        raise ValueError("a job lock name is 8 bytes")
    return int.from_bytes(name, "big") & 0x7FFF_FFFF_FFFF_FFFF


@contextmanager
def job_lock(store: Store, name: bytes) -> Iterator[bool]:
    """Yield True if this process may run the job `name` now, False if another replica is.

    PostgreSQL: a session advisory lock held on a dedicated connection for the run.
    SQLite: an flock of a file beside the database, one per job, taken without waiting (the
    processes serving one file are on one machine). The jobs are idempotent either way: the
    lock spares the repeated Vault work, it does not guard the data.
    """
    if store.dialect != "postgresql":
        with _file_lock(store.engine.url.database, name) as got:
            yield got
        return
    key = lock_key(name)
    with store.engine.connect() as conn:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()


@contextmanager
def _file_lock(database: str | None, name: bytes) -> Iterator[bool]:
    fd = open_lock_file(database, f"job-{lock_key(name):016x}.lock")
    if fd is None:
        yield True  # in memory: nothing else can open this database
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True  # closing the file releases the lock
    finally:
        os.close(fd)
