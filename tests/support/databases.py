"""Throwaway databases for tests, of both kinds.

A migrated database is a copy of a template this test process migrated once: a PostgreSQL
`CREATE DATABASE ... TEMPLATE`, or a copy of a migrated SQLite file. The migration tests ask
for an empty one (PostgreSQL's template0, or no file at all). Every name carries this
process's id, so pytest-xdist workers and other checkouts running tests on the same server
never clash, and what a killed run left behind is dropped by the next one.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import psycopg
import psycopg.errors
import pytest

from vault.storage import migrate
from vault.storage.engine import create_store_engine

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 dbname=test"
PG_URL = "postgresql://127.0.0.1:5432/{name}"
# pdv_test_<pid>_<hex> (a test's own) and pdv_tpl_<pid>_<hex> (a process's template).
_OURS = re.compile(r"^pdv_(?:test|tpl)_(\d+)_[0-9a-f]+$")
_CREATE_DEADLINE = 120.0  # seconds: a busy server may hold a template for a while

_postgres_checked = False


def migrate_url(url: str) -> None:
    engine = create_store_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def ensure_postgres() -> None:
    """Start the machine's PostgreSQL cluster if it is down; fail loudly (never skip) if impossible.
    Checked once per process: a test that breaks the server repairs it itself."""
    global _postgres_checked
    if _postgres_checked:
        return
    if not _pg_answers():
        subprocess.run(
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start", shell=True, check=False
        )
        if not _pg_answers():
            pytest.fail("PostgreSQL on 127.0.0.1:5432 is down and could not be started; the suite needs it", pytrace=False)
    _postgres_checked = True


def _pg_answers() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)


def _unique(kind: str) -> str:
    return f"pdv_{kind}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


def _create_postgres(name: str, template: str) -> None:
    """CREATE DATABASE from `template`, waiting out "source database is being accessed by other
    users" (a session still leaving it, or another copy being made) with backoff."""
    deadline, pause = time.monotonic() + _CREATE_DEADLINE, 0.05
    while True:
        try:
            _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def drop_postgres_database(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _Templates:
    """This process's migrated templates, made on first use; PostgreSQL copies of one made ahead,
    in a thread of their own (a copy waits on the disk, not the CPU: about a second on a busy
    machine), and the databases waiting to be dropped, in threads of their own too. Several at
    once cost little more than one: 16 copies take about 3 s on four threads, 4 drops 18 s on one."""

    SPARES = 3  # copies made ahead of need
    MAKERS = 2  # threads making them: copies made side by side share their waits on the disk
    DROPPERS = 4  # threads dropping: each drop waits on a checkpoint, drops side by side share one

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._postgres: str | None = None
        self._sqlite_dir: Path | None = None
        self._spares: queue.Queue[str] = queue.Queue(maxsize=self.SPARES)
        self._makers: list[threading.Thread] = []
        self._maker_error: BaseException | None = None
        self._closing = threading.Event()
        self._drops: ThreadPoolExecutor | None = None
        self._pending: list[tuple[Future[None], Callable[[str], None], str]] = []
        self._fresh: set[str] = set()

    def copied(self, url: str) -> str:
        """Note `url` as a copy of a migrated template, as yet untouched."""
        with self._lock:
            self._fresh.add(url)
        return url

    def untouched_copy(self, url: str) -> bool:
        """True, once, for a database just copied from a migrated template: migrating it is a no-op
        (a third of a second on PostgreSQL) that start_stack may skip."""
        with self._lock:
            if url in self._fresh:
                self._fresh.discard(url)
                return True
            return False

    def postgres(self) -> str:
        with self._lock:
            if self._postgres is None:
                ensure_postgres()
                self._sweep_dead_runs()
                name = _unique("tpl")
                _create_postgres(name, "template0")
                migrate_url(PG_URL.format(name=name))  # its engine is disposed: nothing stays connected
                # Nobody connects to it again: a connection would make every copy wait.
                _admin(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
                self._postgres = name
            return self._postgres

    def migrated_postgres(self) -> str:
        """The name of a new PostgreSQL database at the newest schema, this caller's alone."""
        template = self.postgres()
        with self._lock:
            if not self._makers:
                self._closing.clear()
                self._makers = [threading.Thread(target=self._make_spares, args=(template,),
                                                 name="pdv-test-spares", daemon=True) for _ in range(self.MAKERS)]
                for maker in self._makers:
                    maker.start()
        deadline = time.monotonic() + _CREATE_DEADLINE
        while True:
            try:
                return self._spares.get(timeout=0.5)
            except queue.Empty:
                if self._maker_error is not None:
                    raise RuntimeError("making test databases failed") from self._maker_error
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no test database made in {_CREATE_DEADLINE:.0f} s") from None

    def _make_spares(self, template: str) -> None:
        try:
            while not self._closing.is_set():
                name = _unique("test")
                _create_postgres(name, template)
                while True:
                    if self._closing.is_set():
                        drop_postgres_database(name)
                        return
                    try:
                        self._spares.put(name, timeout=0.5)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # reported to the next test that asks (migrated_postgres)
            self._maker_error = exc

    def sqlite(self) -> Path:
        with self._lock:
            if self._sqlite_dir is None:
                directory = Path(tempfile.mkdtemp(prefix="pdv-sqlite-template-"))
                path = directory / "pdv.db"
                migrate_url(f"sqlite:///{path}")
                with sqlite3.connect(path) as conn:  # everything in the main file: a plain copy is whole
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.close()
                self._sqlite_dir = directory
            return self._sqlite_dir / "pdv.db"

    def drop_later(self, name: str) -> None:
        with self._lock:
            self._submit_drop(drop_postgres_database, name)

    def _submit_drop(self, drop: Callable[[str], None], name: str) -> None:  # with self._lock held
        if self._drops is None:
            self._drops = ThreadPoolExecutor(max_workers=self.DROPPERS, thread_name_prefix="pdv-test-drop")
        self._pending = [p for p in self._pending if not p[0].done()] + [(self._drops.submit(drop, name), drop, name)]

    def close(self) -> None:
        """Stop making copies; drop the spare copies, the templates and every database still
        waiting, all at once (side by side the drops share their checkpoints); raise the first
        failure."""
        self._closing.set()
        with self._lock:
            makers, self._makers = self._makers, []
        for maker in makers:
            maker.join()
        with self._lock:
            pending, self._pending = self._pending, []
            drops, self._drops = self._drops, None
            postgres, self._postgres = self._postgres, None
            sqlite_dir, self._sqlite_dir = self._sqlite_dir, None
            maker_error, self._maker_error = self._maker_error, None
        waiting = [(drop, name) for future, drop, name in pending if future.cancel()]
        running = [future for future, _, _ in pending if not future.cancelled()]
        while not self._spares.empty():
            waiting.append((drop_postgres_database, self._spares.get_nowait()))
        if postgres is not None:
            waiting.append((_drop_template, postgres))
        try:
            if waiting:
                with ThreadPoolExecutor(max_workers=min(len(waiting), 16)) as dropping:
                    running += [dropping.submit(drop, name) for drop, name in waiting]
            for future in running:
                future.result()
            if maker_error is not None:
                raise RuntimeError("making test databases failed") from maker_error
        finally:
            if drops is not None:
                drops.shutdown(wait=True)
            if sqlite_dir is not None:
                shutil.rmtree(sqlite_dir, ignore_errors=True)

    def _sweep_dead_runs(self) -> None:  # with self._lock held
        """Drop (in the background) the databases and templates of test processes that are gone: killed runs."""
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            names = [r[0] for r in conn.execute("SELECT datname FROM pg_database")]
        for name in names:
            match = _OURS.match(name)
            if match and not _alive(int(match.group(1))):
                self._submit_drop(_drop_template, name)


def _drop_template(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


templates = _Templates()


@contextmanager
def postgres_database(migrated: bool = True) -> Iterator[str]:
    """A new PostgreSQL database, at the newest schema (or empty); dropped (forcefully) afterwards,
    in the background: `templates.close()` at the end of the session waits for the drops."""
    ensure_postgres()
    if migrated:
        name = templates.migrated_postgres()
    else:
        name = _unique("test")
        _create_postgres(name, "template0")
    url = PG_URL.format(name=name)
    try:
        yield templates.copied(url) if migrated else url
    finally:
        templates.untouched_copy(url)
        templates.drop_later(name)


@contextmanager
def database(kind: str, tmp_path: Path, migrated: bool = True) -> Iterator[str]:
    """A database of `kind` ("sqlite" or "postgresql") at the newest schema, or empty."""
    if kind == "sqlite":
        path, url = tmp_path / "pdv.db", f"sqlite:///{tmp_path / 'pdv.db'}"
        if migrated:
            shutil.copyfile(templates.sqlite(), path)
        try:
            yield templates.copied(url) if migrated else url
        finally:
            templates.untouched_copy(url)
    else:
        with postgres_database(migrated) as url:
            yield url
