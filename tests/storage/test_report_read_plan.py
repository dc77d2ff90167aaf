"""The access report's reads of the log probe indexes whatever plan the database picks.

The report reads one subject's entries through the per-subject index, the cited entries by id,
each one's predecessor on its chain (the (chain_id, id) index of migration 0012) and the chain's
newest checkpoint (the (chain_id, seq) index). A plan that scans the log costs time in proportion
to the log: an earlier attempt without the chain index took ~3 s for a report at 10k entries.
Plans made before a table has statistics are the likeliest to scan, so this fills a log that is
never analyzed and looks at the plan of every statement the report's log part sends. On
SQLite, whose planner does not guess from statistics here, the one statement that matters
(the predecessors) is checked to seek the chain index.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import event

from tests.support.databases import postgres_database
from tests.unit.test_audit_chain import KEY, FakeSigner
from vault.services.audit import AuditChain, CheckpointFile
from vault.services.audit_cited import verify_cited
from vault.storage import migrate
from vault.storage.audit_log import _PREDECESSORS_SQLITE, AuditRepository
from vault.storage.engine import create_store_engine
from vault.storage.store import Store

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
TARGET = "t" * 32
SIZE, EVERY = 20_000, 100  # a log of 20k entries, 200 of them the target's
_LOG_TABLES = ("access_log", "access_subjects", "audit_checkpoints", "audit_chains")


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str, Path]]:
    sink = tmp_path_factory.mktemp("report-plan") / "cp.jsonl"
    with postgres_database() as url:
        store = Store(create_store_engine(url))
        migrate.upgrade(store.engine)
        with psycopg.connect(url, autocommit=True) as conn:  # no autovacuum analyze while the test looks
            for table in _LOG_TABLES:
                conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        chain = AuditChain(KEY, AuditRepository(store), FakeSigner(), CheckpointFile(sink), lambda: NOW, 1000, 3600)
        chain.start()
        store.attach_chain(chain)
        try:
            for start in range(0, SIZE, 500):
                with store.transaction() as tx:
                    tx.log_access([(NOW, f"r{i}", "reader", "detokenize", "billing",
                                    TARGET if i % EVERY == 0 else f"{i:032d}", "email", f"tok{i}", "ok")
                                   for i in range(start, start + 500)])
                chain.checkpoint()
            chain.close(final_checkpoint=True)
            yield store, url, sink
        finally:
            store.close()


def _report_statements(store: Store, sink: Path) -> list[tuple[str, object]]:
    """Every statement (and its parameters) the report's log part sends: the subject's entries
    and the check of each cited one (vault/services/rights/report.py), and verify_cited's read
    of the cited rows by id for a caller that has not read them."""
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    repo = AuditRepository(store)
    event.listen(store.engine, "before_cursor_execute", record)
    try:
        read = {row.id: row for row in repo.subject_rows(TARGET)}  # as the report reads them
        checks = verify_cited(repo, KEY, FakeSigner(), CheckpointFile(sink), list(read), read)
        cited = [e.id for e in repo.subject_entries(TARGET)]
        # and as a caller that has only the ids does: the cited rows read by id
        checks.update(verify_cited(repo, KEY, FakeSigner(), CheckpointFile(sink), cited))
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert len(cited) == SIZE // EVERY and all(checks.values())
    return [(s, p) for s, p in seen if any(name in s for name in _LOG_TABLES)]


def _assert_index_driven(plan: str) -> None:
    assert not any(f"Seq Scan on {name}" in plan for name in _LOG_TABLES), plan
    assert "Index" in plan, plan


def _never_analyzed(conn: psycopg.Connection) -> None:
    analyzed = conn.execute("SELECT count(*) FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL "
                            "OR last_autoanalyze IS NOT NULL").fetchone()
    assert analyzed == (0,), "the point is a plan made without statistics"


def test_every_statement_of_the_reports_log_part_probes_an_index(filled: tuple[Store, str, Path]) -> None:
    store, url, sink = filled
    statements = _report_statements(store, sink)
    # the subject's entries, the cited rows, the checkpoints, the predecessors
    assert {"access_subjects", "audit_checkpoints", "LATERAL"} <= {
        word for s, _ in statements for word in ("access_subjects", "audit_checkpoints", "LATERAL") if word in s}
    with psycopg.connect(url, autocommit=True) as conn:
        _never_analyzed(conn)
        explain = psycopg.ClientCursor(conn)  # the parameters bound as literals: the plan a first run gets
        for sql, params in statements:
            _assert_index_driven("\n".join(r[0] for r in explain.execute(f"EXPLAIN {sql}", params)))


@pytest.mark.parametrize("marker, types", [("id < c.id", "bigint[], text"), ("id = c.id", "bigint[]")],
                         ids=["predecessors", "cited-rows"])
def test_the_driver_level_reads_probe_indexes_in_their_generic_plans(
    filled: tuple[Store, str, Path], marker: str, types: str,
) -> None:
    """The driver prepares a statement it runs often, and a prepared statement may settle on a
    generic plan, made without the ids: the predecessor lookup and the read of the cited rows
    must probe their indexes in it too."""
    store, url, sink = filled
    sql, params = next((s, p) for s, p in _report_statements(store, sink) if marker in s)
    n = iter(range(1, 10))
    with psycopg.connect(url, autocommit=True) as conn:
        _never_analyzed(conn)
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE report_read ({types}) AS {re.sub(r'%s', lambda _m: f'${next(n)}', sql)}")
        explain = psycopg.ClientCursor(conn)
        marks = ", ".join(["%s"] * len(params))
        plan = "\n".join(r[0] for r in explain.execute(f"EXPLAIN EXECUTE report_read ({marks})", params))
    _assert_index_driven(plan)
    if marker == "id < c.id":
        assert "ix_access_log_chain_id" in plan, plan


def test_on_sqlite_the_predecessors_are_seeks_of_the_chain_index(tmp_path: Path) -> None:
    path = tmp_path / "plan.db"
    migrate.upgrade(create_store_engine(f"sqlite:///{path}"))
    with sqlite3.connect(path) as conn:
        plan = "\n".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {_PREDECESSORS_SQLITE}", ("[1, 2]", "c")))
    assert "SEARCH access_log USING COVERING INDEX ix_access_log_chain_id (chain_id=? AND id<?)" in plan, plan
    assert "SCAN access_log" not in plan and "SCAN l" not in plan, plan
