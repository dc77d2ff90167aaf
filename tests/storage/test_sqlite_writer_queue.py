"""SQLite writers in several processes queue on one lock and hand over at once."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from vault.storage.sqlite_locks import SqliteWriterQueue


def _hold(database: str, holding, release) -> None:  # type: ignore[no-untyped-def]
    queue = SqliteWriterQueue(database)
    with queue:
        holding.set()
        release.wait(10)
    queue.close()


@pytest.mark.serial  # asserts elapsed time
def test_a_writer_in_another_process_waits_until_the_lock_is_released(tmp_path: Path) -> None:
    database = str(tmp_path / "pdv.db")
    ctx = multiprocessing.get_context("spawn")
    holding, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold, args=(database, holding, release))
    other.start()
    try:
        assert holding.wait(30)
        queue, entered = SqliteWriterQueue(database), threading.Event()

        def write() -> None:
            with queue:
                entered.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert not entered.wait(0.3)  # the other process holds the lock
        released_at = time.monotonic()
        release.set()
        assert entered.wait(5) and time.monotonic() - released_at < 1.0  # woken at once, not polling
        writer.join()
        queue.close()
    finally:
        release.set()
        other.join(10)
    assert other.exitcode == 0
    assert (tmp_path / "pdv.db.writer-lock").stat().st_mode & 0o777 == 0o600  # beside the database, private


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    queue, inside, most = SqliteWriterQueue(str(tmp_path / "pdv.db")), [0], [0]
    lock = threading.Lock()

    def write() -> None:
        for _ in range(200):
            with queue:
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                with lock:
                    inside[0] -= 1

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.close()
    assert most[0] == 1


def test_an_in_memory_database_needs_no_lock_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # where a lock file named after ":memory:" would land
    queue = SqliteWriterQueue(":memory:")
    with queue:
        pass
    queue.close()
    assert not list(tmp_path.iterdir())
