"""Upgrading a database that already holds data, on both databases."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from sqlalchemy import text

from vault.storage import migrate
from vault.storage.engine import create_store_engine


def test_0006_moves_the_records_of_answers_stored_before_it(database_url: str) -> None:
    engine = create_store_engine(database_url)
    try:
        migrate.upgrade(engine, "0005")
        answer = {"results": [["sub_a", {"email": "pdv_x"}], ["", {}], ["sub_b", {}], ["sub_a", {"ssn": "1"}]],
                  "errors": []}
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO tokenize_requests (principal, request_id, fingerprint, response, created_at) "
                     "VALUES ('intake', 'r1', :fp, :response, :at)"),
                {"fp": b"fp", "response": json.dumps(answer), "at": datetime(2026, 1, 1, tzinfo=timezone.utc)},
            )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT principal, request_id, position, subject_id, tokens FROM request_records "
                                     "ORDER BY position"))
            assert [tuple(r) for r in rows] == [("intake", "r1", 0, "sub_a", '{"email": "pdv_x"}'),
                                                ("intake", "r1", 2, "sub_b", "{}"), ("intake", "r1", 3, "sub_a", '{"ssn": "1"}')]
            response = conn.execute(text("SELECT response FROM tokenize_requests")).scalar_one()
            assert json.loads(response) == {"records": 4, "errors": []}
    finally:
        engine.dispose()
