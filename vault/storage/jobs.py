"""One background job of a kind at a time across replicas (disposal, rewrap)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

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
    SQLite: True; its write lock already makes every writing transaction exclusive, and the
    jobs are idempotent, so two replicas on one file only repeat each other's empty surveys.
    """
    if store.dialect != "postgresql":
        yield True
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
