"""One background job of a kind at a time, across processes, on both databases."""

from __future__ import annotations

import multiprocessing
from tests.support.stack import migrate_url
from vault.storage.engine import create_store_engine
from vault.storage.jobs import job_lock
from vault.storage.store import Store


def _try_in_another_process(url: str, name: bytes, answer) -> None:  # type: ignore[no-untyped-def]
    store = Store(create_store_engine(url))
    try:
        with job_lock(store, name) as mine:
            answer.put(mine)
    finally:
        store.close()


def _other_process_may_run(url: str, name: bytes) -> bool:
    ctx = multiprocessing.get_context("spawn")
    answer = ctx.Queue()
    other = ctx.Process(target=_try_in_another_process, args=(url, name, answer))
    other.start()
    try:
        return bool(answer.get(timeout=60))
    finally:
        other.join(30)


def test_a_job_runs_in_one_process_at_a_time(database_url: str) -> None:
    migrate_url(database_url)
    store = Store(create_store_engine(database_url))
    try:
        with job_lock(store, b"PDVTEST1") as mine:
            assert mine
            assert not _other_process_may_run(database_url, b"PDVTEST1")  # held here: the other skips its round
            assert _other_process_may_run(database_url, b"PDVTEST2")  # another job is not held up
        assert _other_process_may_run(database_url, b"PDVTEST1")  # released
    finally:
        store.close()

