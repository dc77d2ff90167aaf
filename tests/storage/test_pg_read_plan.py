"""On PostgreSQL, detokenize's read probes indexes whatever plan the server picks.

A plan that scans a table costs time in proportion to the table and, when only a found
token reaches the scan, tells found from unknown tokens by timing. Plans made before a
table has statistics are the likeliest to scan, so this looks at the read's plans, the
generic one (what a prepared statement settles on) and custom ones for 1 and 1,000
tokens, on tables that have never been analyzed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import event

from tests.support.databases import postgres_database
from vault.cli.bench import PURPOSE, person
from vault.cli.bench_db_floor import DatabaseFloor
from vault.storage import migrate
from vault.storage.engine import create_store_engine
from vault.storage.store import Store


@pytest.fixture(scope="module")
def filled() -> Iterator[tuple[Store, str, list[str]]]:
    with postgres_database() as url:
        store = Store(create_store_engine(url))
        migrate.upgrade(store.engine)
        floor = DatabaseFloor(store, PURPOSE)
        floor.tokenize_rate([person(i) for i in range(4000)], 1000)
        try:
            yield store, url, floor.tokens
        finally:
            store.close()


def _read_statement(store: Store, tokens: list[str]) -> str:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        with store.transaction() as tx:
            assert len(tx.values_for_tokens(tokens, PURPOSE)) == len(tokens)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    (read,) = [s for s in seen if "field_values" in s]
    return read


def _numbered(sql: str) -> str:
    n = iter(range(1, 100))
    return re.sub(r"%s", lambda _m: f"${next(n)}", sql)


@pytest.mark.parametrize("plan_mode", ["force_generic_plan", "force_custom_plan"])
@pytest.mark.parametrize("count", [1, 1000])
def test_the_read_never_scans_a_table(filled: tuple[Store, str, list[str]], plan_mode: str, count: int) -> None:
    store, url, tokens = filled
    asked = tokens[:count]
    read = _read_statement(store, asked)
    with psycopg.connect(url, autocommit=True) as conn:
        analyzed = conn.execute("SELECT count(*) FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL "
                                "OR last_autoanalyze IS NOT NULL").fetchone()
        assert analyzed == (0,), "the point is a plan made without statistics"
        conn.execute(f"SET plan_cache_mode = {plan_mode}")
        conn.execute(f"PREPARE read_values (text, text[]) AS {_numbered(read)}")
        explain = psycopg.ClientCursor(conn)  # EXECUTE's arguments must be literals, bound here
        plan = "\n".join(r[0] for r in explain.execute("EXPLAIN EXECUTE read_values (%s, %s)", (PURPOSE, asked)))
    assert "Seq Scan on field_values" not in plan and "Seq Scan on data_keys" not in plan, plan
    assert "Index Scan using data_keys_pkey" in plan, plan
