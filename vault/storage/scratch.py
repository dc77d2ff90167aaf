"""Scratch PostgreSQL databases for `pdv bench` (and anything else that needs a throwaway one)."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from vault.storage.engine import normalize_url


def create_scratch_database(admin_url: str, prefix: str = "pdv_scratch") -> str:
    """Create an empty database next to `admin_url`'s and return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _run_admin(admin_url, f'CREATE DATABASE "{name}"')
    return make_url(normalize_url(admin_url)).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    _run_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_admin(admin_url: str, statement: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    engine = create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()
