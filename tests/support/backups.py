"""Backing a test database up and restoring it the way an operator would: a copy of the
SQLite file (sqlite3's online backup), or pg_dump and pg_restore into a recreated database."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import psycopg

from tests.support.databases import PG_ADMIN_DSN


def backup_database(url: str, to: Path) -> None:
    """Take a backup of the database at `url` into the file `to`."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as src, sqlite3.connect(to) as dst:
            src.backup(dst)
        return
    subprocess.run(["pg_dump", "--format=custom", f"--file={to}", url], check=True, capture_output=True)


def restore_database(url: str, backup: Path) -> None:
    """Replace the database at `url` by the backup (nothing may be connected to it)."""
    if url.startswith("sqlite:///"):
        db = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        shutil.copy(backup, db)
        return
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(["pg_restore", "--exit-on-error", f"--dbname={url}", str(backup)], check=True, capture_output=True)
