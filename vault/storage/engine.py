"""Engine construction for the two supported databases; nothing is built at import time."""

from __future__ import annotations

from pathlib import Path
from typing import TypeGuard

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from vault.storage.wal import BACKSTOP_PAGES

READ_ONLY = "pdv_read_only"
# Page cache per SQLite connection (SQLite's default is 2 MiB). The token and blind-index
# B-trees are written in random order, so a batch touches pages all over them.
CACHE_KIB = 16 * 1024


def is_sqlite_file(database: str | None) -> TypeGuard[str]:
    """True for an SQLite database in a file (not in memory): one that has a path, a
    write-ahead log and neighbours on disk."""
    return database is not None and database not in ("", ":memory:")


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use psycopg 3 for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_store_engine(url: str, pool_size: int = 24) -> Engine:
    """An Engine tuned for PDV's access pattern: short write transactions, one per batch.

    Both kinds hide bound parameters (subject ids, tokens, blind indexes, ciphertexts) from
    SQL statement logging and from the text of SQLAlchemy's exceptions.
    """
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, pool_size)
    return _postgresql_engine(url, pool_size)


def _postgresql_engine(url: str, pool_size: int) -> Engine:
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # PDV's statements are index probes of a few milliseconds at most. A batch's row
        # estimates can still push a plan's cost past jit_above_cost, and compiling it then
        # took about 100 ms for a 1,000-token read that runs in 12.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = off")
        dbapi_connection.commit()

    return engine


def _sqlite_engine(url: str, database: str | None, pool_size: int) -> Engine:
    if is_sqlite_file(database):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # Enough pooled connections for every worker thread: a new SQLite connection costs
    # its PRAGMAs, so overflow connections opened and closed per call are slow.
    engine = create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=pool_size, max_overflow=pool_size,
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see SQLAlchemy's
        # "Serializable isolation / Savepoints / Transactional DDL" recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted rows (a shredded wrapped DEK above all) are overwritten, not left in free pages.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # The log is checkpointed by the store's own thread (vault.storage.wal); this is the backstop.
        cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        # Write transactions take the write lock up front, so they never fail to upgrade
        # with SQLITE_BUSY_SNAPSHOT; read-only snapshots take no lock at all (WAL).
        # Sent to the driver directly: it runs once per transaction, on every call's path.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.connection.driver_connection.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
