"""Upgrading (and downgrading) a database that already holds data, on both databases."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from sqlalchemy import text

from tests.storage.test_store_contract import _add_subjects, _subject, _value
from vault.storage import migrate
from vault.storage.engine import create_store_engine
from vault.storage.store import Store

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_0006_moves_stored_answers_to_records_without_what_was_shredded(database_url: str) -> None:
    """Before 0006 a shred left stored tokenize answers alone: the upgrade must not carry a
    shredded subject, or a shredded field's token, into the records a retry replays."""
    engine = create_store_engine(database_url)
    live, gone = _subject(1), _subject(2)
    answers = {
        "r1": {"results": [[live, {"email": "pdv_x", "ssn": "123450001"}], ["", {}], [gone, {"email": "pdv_y"}]],
               "errors": [[1, "email", "InvalidInput", "records[1]: email: not an email address"]]},
        "r2": {"results": [[live, {"email": "pdv_x"}]], "errors": []},
    }
    try:
        migrate.upgrade(engine, "0005")
        store = Store(engine)
        _add_subjects(store, live)  # `gone` was shredded whole; `live` had its ssn shredded
        with store.transaction() as tx:
            tx.add_values([_value(live, "email", "pdv_x")])
        with engine.begin() as conn:
            for request_id, answer in answers.items():
                conn.execute(text("INSERT INTO tokenize_requests (principal, request_id, fingerprint, response, created_at) "
                                  "VALUES ('intake', :r, :fp, :response, :at)"),
                             {"r": request_id, "fp": b"fp-" + request_id.encode(), "response": json.dumps(answer), "at": AT})
        migrate.upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT request_id, position, subject_id, tokens FROM request_records "
                                     "ORDER BY request_id, position"))
            assert [tuple(r) for r in rows] == [("r1", 0, live, '{"email": "pdv_x"}'), ("r1", 2, "", "{}"),
                                                ("r2", 0, live, '{"email": "pdv_x"}')]
            stored = {r: (bytes(fp), json.loads(body)) for r, fp, body in
                      conn.execute(text("SELECT request_id, fingerprint, response FROM tokenize_requests"))}
        assert stored == {"r1": (b"", {"records": 3, "errors": answers["r1"]["errors"]}),
                          "r2": (b"fp-r2", {"records": 1, "errors": []})}

        migrate.downgrade(engine, "0005")  # and back: revision 0005's format, what was shredded left out
        with engine.connect() as conn:
            back = {r: json.loads(body) for r, body in conn.execute(text("SELECT request_id, response FROM tokenize_requests"))}
        assert back["r1"]["results"] == [[live, {"email": "pdv_x"}], ["", {}], ["", {}]]
        assert back["r2"] == answers["r2"]
    finally:
        engine.dispose()
