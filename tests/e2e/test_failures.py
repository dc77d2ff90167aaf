"""Failure behaviour, end to end (DESIGN §8): Vault killed, hung or sealed; restarts; the database
gone or un-migrated; the service token's least privilege; graceful shutdown.

Tests that kill or seal OpenBao start their own server, so the session's one stays healthy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import hvac
import hvac.exceptions
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pdv_client import Record
from pdv_client.errors import Unavailable
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from tests.conftest import DATABASES
from tests.support.databases import drop_postgres_database, postgres_database
from tests.support.stack import Stack, service_token, start_stack
from vault.bootstrap import bootstrap
from vault.config import load_settings
from vault.errors import StoreUnavailable
from vault.keys.openbao import OpenBaoServer

PURPOSE = "benefits_eligibility"
FAIL_FAST_SECONDS = 5.0  # the stacks run with vault_timeout=2
TABLES = ("subjects", "data_keys", "field_values", "tokenize_requests")


def person(n: int) -> dict[str, str]:
    return {
        "full_name": "Ada Lovelace",
        "email": f"ada{n}@example.org",
        "phone": f"212555{n:04d}",
        "ssn": f"123-45-{1000 + n}",
    }


def counts(stack: Stack) -> dict[str, int]:
    with stack.app.store.engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def access_outcomes(stack: Stack, action: str, token: str) -> list[str]:
    with stack.app.store.engine.connect() as conn:
        return list(conn.execute(
            text("SELECT outcome FROM access_log WHERE action = :a AND token = :t ORDER BY id"), {"a": action, "t": token}
        ).scalars())


@contextmanager
def timed(limit: float = FAIL_FAST_SECONDS) -> Iterator[None]:
    start = time.monotonic()
    yield
    elapsed = time.monotonic() - start
    assert elapsed < limit, f"took {elapsed:.1f}s; a dependency failure must fail fast (< {limit}s)"


def unavailable(call: Callable[[], object], limit: float = FAIL_FAST_SECONDS) -> Unavailable:
    """Run `call`, which must fail with UNAVAILABLE within `limit` seconds; return the error."""
    with timed(limit), pytest.raises(Unavailable) as exc_info:
        call()
    return exc_info.value


def wait_until_active(bao: OpenBaoServer, timeout: float = 15.0) -> None:
    """After an unseal, raft needs a moment to elect itself leader again."""
    client = hvac.Client(url=bao.addr, timeout=2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.adapter.request("GET", "/v1/sys/health", raise_exception=False)
        if isinstance(response, dict) and not response.get("sealed") and not response.get("standby"):
            return
        time.sleep(0.05)
    raise AssertionError("OpenBao did not become active after unseal")


@pytest.fixture
def own_bao(tmp_path: Path) -> Iterator[OpenBaoServer]:
    """An OpenBao of this test's own, free to be killed, hung or sealed."""
    bao = OpenBaoServer(tmp_path / "openbao").start()
    try:
        yield bao
    finally:
        bao.kill()


@pytest.fixture
def own_stack(own_bao: OpenBaoServer, database_url: str) -> Iterator[Stack]:
    s = start_stack(own_bao, database_url, service_token(own_bao))
    try:
        yield s
    finally:
        s.stop()


# --- Vault down ---------------------------------------------------------------------------------

@pytest.mark.serial  # asserts elapsed time
def test_vault_killed_mid_run(own_bao: OpenBaoServer, own_stack: Stack) -> None:
    client = own_stack.client()
    (kept,) = client.tokenize([Record(person(1))], purpose=PURPOSE, source="311")

    own_bao.kill()

    # Documented: a DEK still in the cache keeps serving reads; lookups need no Vault call at all.
    assert client.detokenize_one(kept.tokens["email"], purpose=PURPOSE) == "ada1@example.org"
    assert client.detokenize_one(kept.tokens["ssn"], purpose=PURPOSE, field="ssn") == "123451001"
    assert [m.token for m in client.lookup("phone", "212-555-0001", purpose=PURPOSE)] == [kept.tokens["phone"]]

    # Forget cached DEKs and the spare pre-wrapped DEKs (dek_spare_keys): now every key needs Vault.
    own_stack.app.keyring.clear()
    before = counts(own_stack)
    error = unavailable(lambda: client.tokenize([Record(person(i)) for i in range(2, 5)], purpose=PURPOSE, source="311"))
    assert "vault" in error.message
    assert counts(own_stack) == before, "a tokenize that failed on Vault wrote rows"

    error = unavailable(lambda: client.detokenize([kept.tokens["email"]], purpose=PURPOSE))
    assert "vault" in error.message
    assert access_outcomes(own_stack, "detokenize", kept.tokens["email"])[-1] == "unavailable"
    assert counts(own_stack) == before


def wait_until_stopped(pid: int, limit: float = 30.0) -> None:
    """Return once every thread of `pid` is stopped. kill() only queues SIGSTOP: a thread inside
    a system call (an fsync on a loaded disk, say) goes on until it returns, and can answer a
    request that arrived meanwhile."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        states = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
            except FileNotFoundError:
                continue  # the thread ended
        if states and all(state in ("T", "t") for state in states):
            return
        time.sleep(0.01)
    raise AssertionError(f"OpenBao (pid {pid}) did not stop within {limit} s")


@pytest.mark.serial  # asserts elapsed time
def test_vault_hung_fails_within_the_timeout(own_bao: OpenBaoServer, own_stack: Stack) -> None:
    """A Vault that accepts connections but never answers (SIGSTOP) is cut off by vault_timeout."""
    client = own_stack.client()
    (kept,) = client.tokenize([Record(person(1))], purpose=PURPOSE, source="311")
    before = counts(own_stack)
    pid = own_bao._proc.pid  # type: ignore[union-attr]  # the test owns this server
    own_stack.app.keyring.clear()  # no spare or cached DEKs: every key needs Vault
    os.killpg(pid, signal.SIGSTOP)
    try:
        wait_until_stopped(pid)
        unavailable(lambda: client.tokenize([Record(person(2))], purpose=PURPOSE, source="311"))
        assert counts(own_stack) == before
        unavailable(lambda: client.detokenize([kept.tokens["email"]], purpose=PURPOSE))
    finally:
        os.killpg(pid, signal.SIGCONT)
    # Vault answers again: PDV recovers by itself.
    assert client.detokenize_one(kept.tokens["email"], purpose=PURPOSE) == "ada1@example.org"


@pytest.mark.serial  # asserts elapsed time
def test_vault_sealed_then_unsealed(own_bao: OpenBaoServer, own_stack: Stack) -> None:
    client = own_stack.client()
    (kept,) = client.tokenize([Record(person(1))], purpose=PURPOSE, source="311")
    before = counts(own_stack)

    own_bao.seal()
    own_stack.app.keyring.clear()  # no spare or cached DEKs: every key needs Vault
    error = unavailable(lambda: client.tokenize([Record(person(2))], purpose=PURPOSE, source="311"))
    assert "vault" in error.message
    assert counts(own_stack) == before
    unavailable(lambda: client.detokenize([kept.tokens["email"]], purpose=PURPOSE))
    assert access_outcomes(own_stack, "detokenize", kept.tokens["email"]) == ["unavailable"]

    own_bao.unseal()
    wait_until_active(own_bao)
    # The same PDV process, not restarted.
    (fresh,) = client.tokenize([Record(person(2))], purpose=PURPOSE, source="311")
    assert client.detokenize_one(kept.tokens["email"], purpose=PURPOSE) == "ada1@example.org"
    assert client.detokenize_one(fresh.tokens["ssn"], purpose=PURPOSE, field="ssn") == "123451002"
    assert [m.subject_id for m in client.lookup("email", "ada2@example.org", purpose=PURPOSE)] == [fresh.subject_id]


# --- restarts -----------------------------------------------------------------------------------

def test_restart_of_pdv_and_openbao_keeps_every_token(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "openbao"
    bao = OpenBaoServer(data_dir).start()
    try:
        token = service_token(bao)
        stack = start_stack(bao, database_url, token)
        try:
            results = stack.client().tokenize([Record(person(i)) for i in range(20)], purpose=PURPOSE, source="311")
        finally:
            stack.stop()
    finally:
        bao.stop()

    bao = OpenBaoServer(data_dir).start()  # same storage, a new port
    try:
        stack = start_stack(bao, database_url, token, migrate_first=True)  # migrating again is a no-op
        try:
            client = stack.client()
            refs = [(r.tokens[f], f) for r in results for f in ("full_name", "email", "phone", "ssn")]
            values = client.detokenize(refs, purpose=PURPOSE)
            assert all(v.code == 0 for v in values)
            expected = [
                {"full_name": "Ada Lovelace", "email": f"ada{i}@example.org", "phone": f"212555{i:04d}",
                 "ssn": f"12345{1000 + i}"}[f]
                for i in range(20) for f in ("full_name", "email", "phone", "ssn")
            ]
            assert [v.value for v in values] == expected
            # The index root survived: lookups and deterministic tokens are unchanged.
            found = client.lookup_many(
                [("email", "ADA7@example.org"), ("phone", "(212) 555-0007"), ("ssn", "123-45-1007")], purpose=PURPOSE
            )
            assert [[(m.subject_id, m.token) for m in f] for f in found] == [
                [(results[7].subject_id, results[7].tokens[name])] for name in ("email", "phone", "ssn")
            ]
            (again,) = client.tokenize([Record({"email": "ada7@example.org"})], purpose=PURPOSE, source="web")
            assert again.tokens["email"] == results[7].tokens["email"]
        finally:
            stack.stop()
    finally:
        bao.stop()


# --- the database -------------------------------------------------------------------------------

@pytest.fixture(params=DATABASES)
def breakable_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Callable, Callable | None]]:
    """(url, break(stack), repair() or None) for a database that can be taken away under a server."""
    if request.param == "sqlite":
        directory, away = tmp_path / "db", tmp_path / "db-away"

        def break_sqlite(stack: Stack) -> None:
            # Close the pooled connections (as a pool recycle or restart would), then take the
            # volume away: where the directory was is now a plain file, so no connection opens.
            stack.app.store.engine.dispose()
            directory.rename(away)
            directory.write_text("not a directory")

        def repair_sqlite() -> None:
            directory.unlink()
            away.rename(directory)

        yield f"sqlite:///{directory / 'pdv.db'}", break_sqlite, repair_sqlite
    else:
        with postgres_database() as url:
            name = make_url(url).database
            assert name
            yield url, lambda _stack: drop_postgres_database(name), None


@pytest.mark.serial  # asserts elapsed time
def test_database_unavailable(
    openbao: OpenBaoServer, vault_token: str, breakable_database: tuple[str, Callable, Callable | None]
) -> None:
    url, break_database, repair = breakable_database
    stack = start_stack(openbao, url, vault_token)
    try:
        client = stack.client()
        (kept,) = client.tokenize([Record(person(1))], purpose=PURPOSE, source="311")

        break_database(stack)

        calls = [
            lambda: client.tokenize([Record(person(2))], purpose=PURPOSE, source="311"),
            lambda: client.detokenize([kept.tokens["email"]], purpose=PURPOSE),
            lambda: client.lookup("email", "ada1@example.org", purpose=PURPOSE),
        ]
        for call in calls:
            assert unavailable(call).message == "database unavailable"
        if repair is not None:
            repair()
            assert client.detokenize_one(kept.tokens["email"], purpose=PURPOSE) == "ada1@example.org"
            (fresh,) = client.tokenize([Record(person(2))], purpose=PURPOSE, source="311")
            assert [m.token for m in client.lookup("email", "ada2@example.org", purpose=PURPOSE)] == [fresh.tokens["email"]]
    finally:
        stack.stop()


def test_unmigrated_database_is_refused_at_start(
    openbao: OpenBaoServer, vault_token: str, empty_database_url: str, tmp_path: Path
) -> None:
    settings = load_settings(
        listen="127.0.0.1:0", database_url=empty_database_url, vault_addr=openbao.addr, vault_token=vault_token
    )
    with pytest.raises(StoreUnavailable, match=r"run `pdv db upgrade`"):
        bootstrap(settings)

    env = {k: v for k, v in os.environ.items() if not k.startswith("PDV_")}
    env.update(
        PDV_DATABASE_URL=empty_database_url, PDV_VAULT_ADDR=openbao.addr, PDV_VAULT_TOKEN=vault_token,
        PDV_LISTEN="127.0.0.1:0",
    )
    pdv = Path(sys.executable).with_name("pdv")
    proc = subprocess.run([str(pdv), "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "pdv db upgrade" in proc.stderr
    assert vault_token not in proc.stderr + proc.stdout

    # Refusing is all it did: the database is still empty.
    from vault.storage.engine import create_store_engine

    engine = create_store_engine(empty_database_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


# --- least privilege ----------------------------------------------------------------------------

def test_service_token_cannot_manage_the_kek(stack: Stack, openbao: OpenBaoServer, vault_token: str) -> None:
    assert stack.app.settings.vault_token_value() == vault_token  # the very token the stack runs with
    admin = openbao.client()
    kek_before = admin.secrets.transit.read_key(name="pdv-kek")["data"]
    service = hvac.Client(url=openbao.addr, token=vault_token, timeout=5)
    transit = service.secrets.transit
    forbidden = {
        "rotate": lambda: transit.rotate_key(name="pdv-kek"),
        "read": lambda: transit.read_key(name="pdv-kek"),
        "export": lambda: transit.export_key(name="pdv-kek", key_type="encryption-key"),
        "configure": lambda: transit.update_key_configuration(name="pdv-kek", deletion_allowed=True),
        "trim": lambda: transit.trim_key(name="pdv-kek", min_version=1),
        "delete": lambda: transit.delete_key(name="pdv-kek"),
        "create another key": lambda: transit.create_key(name="pdv-other"),
        "use another key": lambda: transit.encrypt_data(name="pdv-other", plaintext="AAAA"),
        "list mounts": lambda: service.sys.list_mounted_secrets_engines(),
        "read its policy": lambda: service.sys.read_policy(name="root"),
        "create a token": lambda: service.auth.token.create(policies=["root"]),
    }
    client = stack.client()
    for what, call in forbidden.items():
        with pytest.raises(hvac.exceptions.Forbidden):
            call()
        # ... while the stack keeps serving round trips with that same token.
        (rec,) = client.tokenize([Record({"email": f"{what.replace(' ', '-')}@example.org"})], purpose=PURPOSE, source="311")
        stack.app.keyring.clear()  # so the read needs a real unwrap with the token
        assert client.detokenize_one(rec.tokens["email"], purpose=PURPOSE) == f"{what.replace(' ', '-')}@example.org"
    kek_after = admin.secrets.transit.read_key(name="pdv-kek")["data"]
    assert (kek_after["latest_version"], kek_after["min_decryption_version"], kek_after["deletion_allowed"]) == (
        kek_before["latest_version"], kek_before["min_decryption_version"], kek_before["deletion_allowed"]
    )


# --- graceful shutdown --------------------------------------------------------------------------

def wait_until_not_serving(target: str, timeout: float = 10.0) -> None:
    """Poll the health service until it answers NOT_SERVING (the server's stop has begun)."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while health.Check(health_pb2.HealthCheckRequest(), timeout=5).status != health_pb2.HealthCheckResponse.NOT_SERVING:
            assert time.monotonic() < deadline, "health never answered NOT_SERVING after stop()"
            time.sleep(0.01)


@pytest.mark.serial  # asserts elapsed time
def test_graceful_shutdown_drains_in_flight_calls(openbao: OpenBaoServer, vault_token: str, database_url: str) -> None:
    stack = start_stack(openbao, database_url, vault_token)
    restarted = None
    try:
        # Hold the big call inside the server until stop() has begun, so it is in flight for sure.
        entered, proceed = threading.Event(), threading.Event()
        real_tokenize = stack.app.tokenizer.tokenize

        def held_tokenize(*args, **kwargs):  # type: ignore[no-untyped-def]
            entered.set()
            assert proceed.wait(30)
            return real_tokenize(*args, **kwargs)

        stack.app.tokenizer.tokenize = held_tokenize  # type: ignore[method-assign]
        client = stack.client(timeout=60)
        records = [Record({"email": f"drain{i}@example.org", "full_name": "Alan Turing"}) for i in range(1000)]
        outcome: dict[str, object] = {}

        def big_call() -> None:
            try:
                outcome["results"] = client.tokenize(records, purpose=PURPOSE, source="bulk", batch_size=1000)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                outcome["error"] = exc

        caller = threading.Thread(target=big_call)
        caller.start()
        assert entered.wait(10), "the tokenize call never reached the server"

        probe = stack.client(timeout=5)
        assert probe.lookup("email", "drain1@example.org", purpose=PURPOSE) == []  # connected, served
        stopper = threading.Thread(target=lambda: stack.server.stop(grace=10))
        stop_started = time.monotonic()
        stopper.start()
        # stop() refuses new calls before health says NOT_SERVING: from then on, while the held
        # call still runs, every new call is refused, retryably — on a connection opened before
        # the stop and on a new one. (grpc's own stop, begun at once, CANCELLED calls that
        # crossed its GOAWAY on an open connection.)
        wait_until_not_serving(stack.target)
        late = stack.client(timeout=5)
        for client in (probe, late, probe, late):
            refused = unavailable(lambda: client.lookup("email", "drain1@example.org", purpose=PURPOSE))
            assert "shutting down" in refused.message
        assert caller.is_alive() and stopper.is_alive()

        proceed.set()
        caller.join(30)
        stopper.join(30)
        assert not caller.is_alive() and not stopper.is_alive()
        assert "error" not in outcome, f"the in-flight call failed: {outcome.get('error')!r}"
        results = outcome["results"]
        assert isinstance(results, list) and len(results) == 1000 and all(r.ok for r in results)
        assert time.monotonic() - stop_started < 10 + 2, "stop() waited past the grace period"

        # After stop: refused outright.
        unavailable(lambda: stack.client(timeout=5).lookup("email", "drain1@example.org", purpose=PURPOSE))

        # Everything the drained call answered was committed: a new server on the same database reads it.
        stack.app.close()
        restarted = start_stack(openbao, database_url, vault_token)
        values = restarted.client().detokenize([(r.tokens["email"], "email") for r in results], purpose=PURPOSE)
        assert [v.value for v in values] == [f"drain{i}@example.org" for i in range(1000)]
    finally:
        proceed.set()
        stack.stop()
        if restarted is not None:
            restarted.stop()
