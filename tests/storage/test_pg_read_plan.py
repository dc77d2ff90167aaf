"""On PostgreSQL, detokenize's and lookup's reads probe indexes whatever plan the server picks.

A plan that scans a table costs time in proportion to the table and, when only a found
token reaches the scan, tells found from unknown tokens by timing. Plans made before a
table has statistics are the likeliest to scan, so this looks at the read's plans, the
generic one (what a prepared statement settles on) and custom ones for 1 and 1,000
tokens, on tables that have never been analyzed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import psycopg
import pytest
from sqlalchemy import event

from tests.support.databases import postgres_database
from vault.cli.bench_records import PURPOSE, person
from vault.cli.bench_db_floor import DatabaseFloor
from vault.storage import migrate
from vault.storage.engine import create_store_engine
from vault.storage.store import Store, Tx


@pytest.fixture(scope="module")
def filled() -> Iterator[tuple[Store, str]]:
    with postgres_database() as url:
        store = Store(create_store_engine(url))
        migrate.upgrade(store.engine)
        with psycopg.connect(url, autocommit=True) as conn:  # no autovacuum analyze while the test looks
            for table in ("field_values", "data_keys", "consent_optouts"):
                conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        floor = DatabaseFloor(store, PURPOSE)
        floor.tokenize_rate([person(i) for i in range(4000)], 1000)
        try:
            yield store, url
        finally:
            store.close()


def _statement(store: Store, read: Callable[[Tx], int], expected: int) -> str:
    """The one statement `read` sends that touches field_values."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        with store.transaction() as tx:
            assert read(tx) == expected
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    (statement,) = [s for s in seen if "field_values" in s]
    return statement


def _numbered(sql: str) -> str:
    n = iter(range(1, 100))
    return re.sub(r"%s", lambda _m: f"${next(n)}", sql)


def _detokenize_read(store: Store, count: int) -> tuple[str, str, tuple]:
    """The rows of sequential tokens (by locator) and of the others (by token), in one read."""
    with store.snapshot() as tx:
        rows = tx.fetch(f"SELECT token, locator, token_check FROM field_values ORDER BY id LIMIT {count}")
    tokens = [r[0] for r in rows]
    located = [(r[1], bytes(r[2])) for r in rows if r[1] is not None]
    assert located or count == 1
    sql = _statement(store, lambda tx: len(tx.values_for_tokens(tokens, PURPOSE, "city", located)), count)
    return sql, "text, text[], text, bigint[], text", (PURPOSE, tokens, "city", sorted(r[0] for r in located), "city")


def _lookup_read(store: Store, count: int) -> tuple[str, str, tuple]:
    with store.snapshot() as tx:
        indexes = [bytes(r[0]) for r in tx.fetch(
            f"SELECT blind_index FROM field_values WHERE field = 'email' ORDER BY id LIMIT {count}")]
    sql = _statement(store, lambda tx: len(tx.find_by_index([("email", i) for i in indexes], PURPOSE)), count)
    return sql, "text, text, bytea[]", (PURPOSE, "email", indexes)


def _existing_read(store: Store, count: int) -> tuple[str, str, tuple]:
    with store.snapshot() as tx:
        keys = [tuple(r) for r in tx.fetch(f"SELECT token, field, subject_id FROM field_values WHERE locator IS NULL ORDER BY id LIMIT {count}")]
    sql = _statement(store, lambda tx: len(tx.existing_values(keys)), count)
    return sql, "text[]", (sorted({k[0] for k in keys}),)


@pytest.mark.parametrize("plan_mode", ["force_generic_plan", "force_custom_plan"])
@pytest.mark.parametrize("count", [1, 1000])
@pytest.mark.parametrize("read", [_detokenize_read, _lookup_read, _existing_read],
                         ids=["detokenize", "lookup", "deterministic-tokens"])
def test_the_read_never_scans_a_table(
    filled: tuple[Store, str], read: Callable[[Store, int], tuple[str, str, tuple]], plan_mode: str, count: int,
) -> None:
    store, url = filled
    sql, types, args = read(store, count)
    with psycopg.connect(url, autocommit=True) as conn:
        analyzed = conn.execute("SELECT count(*) FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL "
                                "OR last_autoanalyze IS NOT NULL").fetchone()
        assert analyzed == (0,), "the point is a plan made without statistics"
        conn.execute(f"SET plan_cache_mode = {plan_mode}")
        conn.execute(f"PREPARE read_rows ({types}) AS {_numbered(sql)}")
        explain = psycopg.ClientCursor(conn)  # EXECUTE's arguments must be literals, bound here
        marks = ", ".join(["%s"] * len(args))
        plan = "\n".join(r[0] for r in explain.execute(f"EXPLAIN EXECUTE read_rows ({marks})", args))
    assert "Seq Scan on field_values" not in plan and "Seq Scan on data_keys" not in plan, plan
    assert "Index" in plan, plan
