"""SQLite's write-ahead log reaches the database file soon after a commit, checkpointed by the
store's own thread rather than by the writer inside its transaction."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from vault.storage import migrate
from vault.storage.engine import create_store_engine
from vault.storage.store import Store

SUBJECTS = 200


def subjects_in_main_file(database: Path, copy: Path) -> int:
    """Subjects in a copy of the database file alone, as if its -wal file were lost."""
    shutil.copy(database, copy)
    with sqlite3.connect(copy) as conn:
        try:
            return conn.execute("SELECT count(*) FROM subjects").fetchone()[0]
        except sqlite3.OperationalError:  # not even the schema is there yet
            return -1


def checkpoint_threads() -> int:
    return sum(t.name == "pdv-wal-checkpoint" for t in threading.enumerate())


def test_committed_rows_reach_the_database_file_without_the_writer_checkpointing(tmp_path: Path) -> None:
    before = checkpoint_threads()
    database = tmp_path / "pdv.db"
    engine = create_store_engine(f"sqlite:///{database}")
    migrate.upgrade(engine)
    store = Store(engine)
    assert checkpoint_threads() == before + 1
    try:
        now = datetime.now(timezone.utc)
        with store.transaction() as tx:
            tx.add_subjects([(f"sub_{i:028d}", now, "test") for i in range(SUBJECTS)])
        with engine.connect() as conn:  # far below the writer's own automatic checkpoint
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() >= 10 * SUBJECTS
        deadline = time.monotonic() + 10
        while subjects_in_main_file(database, tmp_path / "copy.db") != SUBJECTS:
            assert time.monotonic() < deadline, "the commit never reached the database file"
            time.sleep(0.05)
    finally:
        store.close()
    assert checkpoint_threads() == before  # close stops the thread
