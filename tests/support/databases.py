"""Throwaway databases for tests: a SQLite file, or a fresh PostgreSQL database per use."""

from __future__ import annotations

import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 dbname=test"
PG_URL = "postgresql://127.0.0.1:5432/{name}"


def ensure_postgres() -> None:
    """Start the machine's PostgreSQL cluster if it is down; fail loudly (never skip) if impossible."""
    if _pg_answers():
        return
    subprocess.run(
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start", shell=True, check=False
    )
    if not _pg_answers():
        pytest.fail("PostgreSQL on 127.0.0.1:5432 is down and could not be started; the suite needs it", pytrace=False)


def _pg_answers() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database; dropped (forcefully) afterwards."""
    ensure_postgres()
    name = f"pdv_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.format(name=name)
    finally:
        drop_postgres_database(name)


def drop_postgres_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'pdv.db'}"
    else:
        with postgres_database() as url:
            yield url
