"""The window (issue 11, item 4): a cut of a chain's tail, with its head rewound and its
database checkpoints deleted, goes unnoticed only while it stays within the entries that
came after the newest checkpoint in the file — fewer than audit_checkpoint_entries once
the checkpoint thread has taken up the last threshold, and none older than
audit_checkpoint_seconds; after a clean stop, none at all."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from pdv_client import Record

from tests.e2e.test_audit import PURPOSE, ClosedLog, _await_checkpointer, _pg_rows, _sqlite_path, person, pg_copy
from tests.support.stack import Stack, start_stack
from vault.bootstrap import build_vault
from vault.keys.openbao import OpenBaoServer
from vault.services.audit import CheckpointFile


def _tokenize(stack: Stack, calls: int, tag: str) -> None:
    client = stack.client()
    for n in range(calls):  # one record, three fields: one entry (of three items) a call
        client.tokenize([Record(person(n, tag))], purpose=PURPOSE, source="311")


def _close(stack: Stack, crash: bool) -> ClosedLog:
    chain = stack.app.audit
    assert chain is not None
    key = chain._key  # type: ignore[attr-defined]
    _, signer = build_vault(stack.settings)
    if crash:  # as a killed process: the thread stops, no last checkpoint is taken
        chain.close(final_checkpoint=False)
        stack.app.audit = None
    stack.stop()
    file = stack.settings.audit_checkpoint_file
    assert file is not None
    return ClosedLog(stack.settings.database_url, key, signer, file, [])


@contextmanager
def _copy(log: ClosedLog, tmp: Path) -> Iterator[tuple[str, Callable[..., list]]]:
    """A copy of the closed database, and a way to run SQL on it."""
    if log.url.startswith("sqlite"):
        copy = tmp / "copy.db"
        for stale in (copy, copy.with_name(copy.name + "-wal"), copy.with_name(copy.name + "-shm")):
            stale.unlink(missing_ok=True)
        shutil.copyfile(_sqlite_path(log.url), copy)
        conn = sqlite3.connect(copy, isolation_level=None)  # autocommit: verify reads what it changed
        try:
            yield f"sqlite:///{copy}", lambda sql, *p: conn.execute(sql, p).fetchall()
        finally:
            conn.close()
        return
    with pg_copy(log.url) as url, psycopg.connect(url, autocommit=True) as conn:
        yield url, lambda sql, *p: _pg_rows(conn.execute(sql.replace("?", "%s"), p))


def _cut_is_caught(log: ClosedLog, tmp: Path, entries: int) -> bool:
    """Cut the newest `entries` of the (one) chain, rewind its head and drop the database
    checkpoints past the cut, as one holding only the database would; does verify notice?"""
    with _copy(log, tmp) as (url, run):
        (head,), = run("SELECT max(seq) FROM access_log")
        keep = head - entries
        (chain, mac), = run("SELECT chain_id, mac FROM access_log WHERE seq = ?", keep)
        run("DELETE FROM access_log WHERE seq > ?", keep)
        run("UPDATE audit_chains SET seq = ?, mac = ? WHERE chain_id = ?", keep, mac, chain)
        run("DELETE FROM audit_checkpoints WHERE seq > ?", keep)
        assert log.verify(url, file=False).ok  # the database alone shows nothing
        return not log.verify(url).ok


def _uncovered(log: ClosedLog) -> int:
    """Entries after the newest checkpoint in the file."""
    report = log.verify()
    assert report.ok, report.problem
    newest = max(cp.seq for cp in CheckpointFile(log.file).read() or [])
    return report.entries - newest


def test_a_cut_bigger_than_the_entry_window_of_a_crashed_process_is_caught(
    openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path,
) -> None:
    every = 23  # not a divisor of the 100 entries: the tail after the last checkpoint is not empty
    stack = start_stack(openbao, database_url, vault_token, audit_checkpoint_file=tmp_path / "cp.jsonl",
                        audit_checkpoint_entries=every, audit_checkpoint_seconds=3600)
    try:
        _tokenize(stack, 100, "w")  # 100 entries, past the threshold four times
        _await_checkpointer(stack.app.audit, every)
    finally:
        log = _close(stack, crash=True)
    open_tail = _uncovered(log)
    assert open_tail < every  # the window, in entries
    for cut in (open_tail + 1, every, every + 1, 2 * every):
        assert _cut_is_caught(log, tmp_path, cut), cut
    if open_tail:  # what the window allows, and no more: a cut within it is not seen
        assert not _cut_is_caught(log, tmp_path, open_tail)


def test_entries_older_than_the_time_window_are_anchored(
    openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path,
) -> None:
    file = tmp_path / "cp.jsonl"
    stack = start_stack(openbao, database_url, vault_token, audit_checkpoint_file=file,
                        audit_checkpoint_entries=10**6, audit_checkpoint_seconds=0.5)
    try:
        _tokenize(stack, 3, "t")  # far below the entry threshold
        chain = stack.app.audit
        assert chain is not None
        head = chain._head.seq  # type: ignore[attr-defined]
        # Wait for the time trigger (no threshold is crossed and nothing stops): the file
        # gets the head; the deadline only turns a missing checkpoint into a failure.
        deadline = time.monotonic() + 30
        while max(cp.seq for cp in CheckpointFile(file).read() or []) < head and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        log = _close(stack, crash=True)
    assert _uncovered(log) == 0
    assert _cut_is_caught(log, tmp_path, 1)


def test_after_a_clean_stop_no_entry_can_be_cut(openbao: OpenBaoServer, vault_token: str, database_url: str,
                                                tmp_path: Path) -> None:
    stack = start_stack(openbao, database_url, vault_token, audit_checkpoint_file=tmp_path / "cp.jsonl",
                        audit_checkpoint_entries=10**6, audit_checkpoint_seconds=3600)
    try:
        _tokenize(stack, 5, "c")
    finally:
        log = _close(stack, crash=False)  # the final checkpoint covers the head
    assert _uncovered(log) == 0
    assert _cut_is_caught(log, tmp_path, 1)
