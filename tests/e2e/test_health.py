"""Health that means something: grpc.health.v1 (Check and Watch, overall and per service) and
the HTTP readiness endpoint say NOT_SERVING while Vault is sealed or the database is gone, and
SERVING again by themselves once it recovers. The same PDV process throughout, real OpenBao,
real SQLite and PostgreSQL. (A detected rollback: tests/e2e/test_restore.py.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import os
import signal
from pathlib import Path

import psycopg
import pytest
from pdv_client import Record
from pdv_client.errors import Unavailable
from sqlalchemy.engine import make_url

from tests.conftest import DATABASES
from tests.e2e.test_failures import own_bao, wait_until_active, wait_until_stopped  # noqa: F401  (own_bao: a fixture)
from tests.support.databases import PG_ADMIN_DSN, postgres_database
from tests.support.observe import NOT_SERVING, SERVING, HealthWatch, check, http_get, scrape, value
from tests.support.stack import Stack, service_token, start_stack
from vault.keys.openbao import OpenBaoServer

PURPOSE = "benefits_eligibility"
SERVICES = ("", "pdv.v1.TokenService", "pdv.v1.SubjectService", "pdv.v1.RequestService", "pdv.v1.DisclosureService",
            "pdv.v1.AdminService")
PROBE = {"health_check_seconds": 0.2, "metrics_address": "127.0.0.1:0"}


def statuses(stack: Stack) -> list[int]:
    return [check(stack, name) for name in SERVICES]


def test_sealed_vault_is_not_serving_until_unsealed(own_bao: OpenBaoServer, database_url: str) -> None:
    stack = start_stack(own_bao, database_url, service_token(own_bao), **PROBE)
    watch = HealthWatch(stack.target)
    try:
        client = stack.client()
        (kept,) = client.tokenize([Record({"email": "seal@example.org"})], purpose=PURPOSE, source="311")
        watch.wait_for(SERVING)
        assert statuses(stack) == [SERVING] * len(SERVICES)
        assert http_get(stack, "/ready") == (200, "ready\n")

        own_bao.seal()
        watch.wait_for(NOT_SERVING)
        assert statuses(stack) == [NOT_SERVING] * len(SERVICES)
        status, body = http_get(stack, "/ready")
        assert status == 503 and "vault: vault sealed or unreachable" in body
        _, samples = scrape(stack)
        assert value(samples, "pdv_serving") == 0 and value(samples, "pdv_dependency_failing", dependency="vault") == 1
        assert value(samples, "pdv_vault_request_errors_total", operation="encrypt", error="KeyUnavailable") >= 1
        stack.app.keyring.clear()  # what a sealed Vault cannot unwrap is truly unavailable
        with pytest.raises(Unavailable):
            client.detokenize([kept.tokens["email"]], purpose=PURPOSE)

        own_bao.unseal()
        wait_until_active(own_bao)
        watch.wait_for(SERVING)  # by itself: the same process, nothing restarted
        assert statuses(stack) == [SERVING] * len(SERVICES)
        assert http_get(stack, "/ready")[0] == 200
        assert client.detokenize_one(kept.tokens["email"], purpose=PURPOSE) == "seal@example.org"
    finally:
        watch.close()
        stack.stop()


def test_a_hung_vault_is_not_serving_until_it_answers(own_bao: OpenBaoServer, tmp_path: Path) -> None:
    """A Vault that accepts connections but never answers (SIGSTOP): the probe gives up after
    vault_timeout, and health comes back once Vault answers again."""
    stack = start_stack(own_bao, f"sqlite:///{tmp_path / 'pdv.db'}", service_token(own_bao), **PROBE)
    watch = HealthWatch(stack.target)
    pid = own_bao._proc.pid  # type: ignore[union-attr]  # the test owns this server
    try:
        watch.wait_for(SERVING)
        os.killpg(pid, signal.SIGSTOP)
        try:
            wait_until_stopped(pid)
            watch.wait_for(NOT_SERVING)
            status, body = http_get(stack, "/ready")
            assert status == 503 and body.startswith("not ready: vault: ")
        finally:
            os.killpg(pid, signal.SIGCONT)
        watch.wait_for(SERVING)
        assert statuses(stack) == [SERVING] * len(SERVICES)
    finally:
        watch.close()
        stack.stop()


@pytest.fixture(params=DATABASES)
def breakable_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Callable, Callable]]:
    """(url, break(), repair()) for a database taken away under a running server and given back.

    SQLite: the database's directory is moved away (and a file put where it was), as when a
    volume goes. PostgreSQL: this test's own database stops taking connections and its
    sessions are ended — the shared server itself keeps running."""
    if request.param == "sqlite":
        directory, away = tmp_path / "db", tmp_path / "db-away"

        def break_sqlite() -> None:
            directory.rename(away)
            directory.write_text("not a directory")

        def repair_sqlite() -> None:
            directory.unlink()
            away.rename(directory)

        yield f"sqlite:///{directory / 'pdv.db'}", break_sqlite, repair_sqlite
        return
    with postgres_database() as url:
        name = make_url(url).database

        def break_postgres() -> None:
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))

        def repair_postgres() -> None:
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

        try:
            yield url, break_postgres, repair_postgres
        finally:
            repair_postgres()  # so the fixture's forced drop can connect to end what is left


def test_database_gone_is_not_serving_until_it_is_back(
    openbao: OpenBaoServer, vault_token: str, breakable_database: tuple[str, Callable, Callable]
) -> None:
    url, break_database, repair = breakable_database
    stack = start_stack(openbao, url, vault_token, **PROBE)
    watch = HealthWatch(stack.target)
    try:
        client = stack.client()
        (kept,) = client.tokenize([Record({"email": "db@example.org"})], purpose=PURPOSE, source="311")
        watch.wait_for(SERVING)

        break_database()
        watch.wait_for(NOT_SERVING)
        assert statuses(stack) == [NOT_SERVING] * len(SERVICES)
        status, body = http_get(stack, "/ready")
        assert status == 503 and "database: database unavailable" in body

        repair()
        watch.wait_for(SERVING)
        assert statuses(stack) == [SERVING] * len(SERVICES)
        assert http_get(stack, "/ready")[0] == 200
        assert client.detokenize_one(kept.tokens["email"], purpose=PURPOSE) == "db@example.org"
    finally:
        watch.close()
        stack.stop()


def test_health_check_seconds_is_validated() -> None:
    from vault.config import load_settings
    from vault.errors import ConfigError

    with pytest.raises(ConfigError, match="health_check_seconds"):
        load_settings(health_check_seconds=0)
    with pytest.raises(ConfigError, match="metrics_address"):
        load_settings(metrics_address="nowhere")
