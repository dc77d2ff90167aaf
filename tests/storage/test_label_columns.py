"""Each label limit in vault/services/common.py is the size of the column the label lands in,
in the migrated schema of both databases (PostgreSQL refuses a longer value; SQLite would keep it)."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from tests.support.stack import migrate_url
from vault.services import common
from vault.storage.engine import create_store_engine

LANDS_IN = [
    (common.MAX_PURPOSE, "field_values", "purpose"),
    (common.MAX_PURPOSE, "access_log", "purpose"),
    (common.MAX_PURPOSE, "consent_optouts", "purpose"),
    (common.MAX_FIELD, "field_values", "field"),
    (common.MAX_FIELD, "access_log", "field"),
    (common.MAX_REQUEST_ID, "tokenize_requests", "request_id"),
    (common.MAX_REQUEST_ID, "access_log", "request_id"),
    (common.MAX_LABEL, "field_values", "source"),
    (common.MAX_LABEL, "field_values", "notice_id"),
    (common.MAX_LABEL, "legal_holds", "case_id"),
]


@pytest.mark.parametrize(("limit", "table", "column"), LANDS_IN)
def test_the_limit_is_the_columns_size(database_url: str, limit: int, table: str, column: str) -> None:
    migrate_url(database_url)
    engine = create_store_engine(database_url)
    try:
        (spec,) = [c for c in inspect(engine).get_columns(table) if c["name"] == column]
    finally:
        engine.dispose()
    assert spec["type"].length == limit
