"""`pdv bench`'s database floor writes what a batched tokenize writes, reads it back, and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.support.databases import PG_ADMIN_DSN, PG_URL, ensure_postgres
from vault.cli.bench_records import PURPOSE, person
from vault.cli.bench_db_floor import DatabaseFloor, empty_store

PG_ADMIN_URL = PG_URL.format(name="test")


def _floor_databases() -> set[str]:
    with psycopg.connect(PG_ADMIN_DSN) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'pdv_floor_%'")}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_floor_writes_tokenize_rows_and_reads_them_back(kind: str) -> None:
    if kind == "postgresql":
        ensure_postgres()
    records = [person(i) for i in range(300)]
    with empty_store(kind, PG_ADMIN_URL) as store:
        floor = DatabaseFloor(store, PURPOSE, inflight=2)
        assert floor.tokenize_rate(records, 100) > 0
        with store.snapshot() as tx:
            counts = {table: tx.fetch(f"SELECT COUNT(*) FROM {table}")[0][0]
                      for table in ("subjects", "data_keys", "field_values", "access_log", "access_subjects",
                                    "request_records")}
            chains = sorted(r[0] for r in tx.fetch("SELECT seq FROM audit_chains"))
            blind = tx.fetch("SELECT COUNT(*) FROM field_values WHERE blind_index IS NOT NULL")[0][0]
        # One log entry per batch (request), with an index row per record.
        assert counts == {"subjects": 300, "data_keys": 300, "field_values": 1500, "access_log": 3, "access_subjects": 300,
                          "request_records": 300}
        assert chains == [1, 2]  # a chain per transaction in flight: batches 0 and 2, and batch 1
        assert blind == 600  # email and phone are searchable in the shipped catalog
        assert floor.detokenize_rate(100) > 0  # raises unless every stored token was found
        database = store.engine.url.database
        if kind == "postgresql":
            assert database in _floor_databases()
    if kind == "sqlite":
        assert not Path(database).parent.exists()
    else:  # its own database is gone (other runs' benches share the server: theirs come and go)
        assert database not in _floor_databases()
