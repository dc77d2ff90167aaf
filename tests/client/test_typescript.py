"""The TypeScript client (clients/typescript) against a real PDV server.

A real stack (OpenBao, SQLite, the gRPC server on a loopback port) and a second one with
mTLS are started here; the client is compiled with its own tsc and its tests run with
`node --test`, reading where the servers are and the credentials from the environment.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pdv_client import Record
from sqlalchemy import text

from tests.support.databases import database
from tests.support.stack import PRINCIPAL, Stack, start_stack
from vault.certs import DevPkiPaths, write_dev_pki
from vault.config import ApiKey, hash_api_key
from vault.keys.openbao import OpenBaoServer
from vault.services.events.purge import purge_expired

CLIENT_DIR = Path(__file__).resolve().parents[2] / "clients" / "typescript"
TLS_PRINCIPAL = "caseworker-app"
UNLISTED = "not-listed"
REPLICA_PRINCIPAL = "ts-replicas"
HOLDER = "ts-holder"  # tokenizes the residents whose shreds test/events.test.ts watches
LAGGING = "ts-lagging"  # its one event expired unread (lagging_holder)
# Values the TS tests send (test/live.test.ts); none may reach the server's log.
VALUES = ("ada.ts@example.org", "Ada Lovelace", "secret-shoe-42", "shred.ts@example.org", "tls.ts@example.org",
          "optout.ts@example.org", "replica0.ts@example.org", "events-shred0.ts@example.org", "Ada Events A",
          "lagging.ts@example.org")


def node_bin(name: str) -> str:
    path = CLIENT_DIR / "node_modules" / ".bin" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make clients/typescript/node_modules/.installed`")
    return str(path)


@pytest.fixture
def event_keys() -> dict[str, str]:
    return {p: "pdvk_" + secrets.token_urlsafe(24) for p in (HOLDER, LAGGING)}


@pytest.fixture
def plain_stack(openbao: OpenBaoServer, vault_token: str, tmp_path: Path, event_keys: dict[str, str]) -> Iterator[Stack]:
    extra = [ApiKey(principal=p, sha256=hash_api_key(k)) for p, k in event_keys.items()]
    s = start_stack(openbao, f"sqlite:///{tmp_path / 'plain.db'}", vault_token, admin_principals=[PRINCIPAL],
                    api_keys=extra)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def pki(tmp_path: Path) -> DevPkiPaths:
    return write_dev_pki(tmp_path / "pki", [TLS_PRINCIPAL, UNLISTED], ["localhost", "127.0.0.1"])


@pytest.fixture
def tls_stack(openbao: OpenBaoServer, vault_token: str, tmp_path: Path, pki: DevPkiPaths) -> Iterator[Stack]:
    s = start_stack(openbao, f"sqlite:///{tmp_path / 'tls.db'}", vault_token, tls_cert_file=pki.server_cert,
                    tls_key_file=pki.server_key, tls_client_ca_file=pki.ca, tls_principals=[TLS_PRINCIPAL])
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def replicas(openbao: OpenBaoServer, vault_token: str, tmp_path: Path) -> Iterator[tuple[list[Stack], str]]:
    """Two servers on one PostgreSQL database, both knowing one more API key; yields them and the key."""
    key = "pdvk_" + secrets.token_urlsafe(24)
    extra = [ApiKey(principal=REPLICA_PRINCIPAL, sha256=hash_api_key(key))]
    with database("postgresql", tmp_path) as url:
        first = start_stack(openbao, url, vault_token, api_keys=extra)
        try:
            second = start_stack(openbao, url, vault_token, migrate_first=False, api_keys=extra)
            try:
                yield [first, second], key
            finally:
                second.stop()
        finally:
            first.stop()


def lagging_holder(stack: Stack, key: str) -> None:
    """Give the principal of `key` an event, then expire it unread: its next Subscribe is OUT_OF_RANGE."""
    (rec,) = stack.client(api_key=key).tokenize([Record({"email": "lagging.ts@example.org"})],
                                                purpose="benefits_eligibility", source="311")
    stack.client().shred_subjects([rec.subject_id], reason="resident asked")
    retention = timedelta(seconds=stack.settings.event_retention_seconds)
    later = datetime.now(timezone.utc) + retention + timedelta(minutes=1)
    assert purge_expired(stack.app.store, retention, lambda: later) == 1


def chains_that_tokenized(stack: Stack, principal: str) -> set[str]:
    """The audit chains (one per server process or app) holding the principal's tokenize entries."""
    with stack.app.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT DISTINCT chain_id FROM access_log WHERE principal = :p AND action = 'tokenize'"),
                            {"p": principal})
        return {r for (r,) in rows}


def test_typescript_client_against_a_real_server(plain_stack: Stack, tls_stack: Stack, pki: DevPkiPaths,
                                                 replicas: tuple[list[Stack], str], event_keys: dict[str, str]) -> None:
    servers, replica_key = replicas
    lagging_holder(plain_stack, event_keys[LAGGING])
    # Into the package's own dist/ (git-ignored): the compiled code resolves its imports from
    # the package's node_modules.
    shutil.rmtree(CLIENT_DIR / "dist", ignore_errors=True)  # no stale compiled test survives
    build = subprocess.run([node_bin("tsc"), "-p", "tsconfig.json"],
                           cwd=CLIENT_DIR, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDV_")} | {
        "PDV_TARGET": plain_stack.target,
        "PDV_API_KEY": plain_stack.api_key,
        "PDV_TLS_TARGET": tls_stack.target,
        "PDV_TLS_CA": str(pki.ca),
        "PDV_TLS_CERT": str(pki.client_cert(TLS_PRINCIPAL)),
        "PDV_TLS_KEY": str(pki.client_key(TLS_PRINCIPAL)),
        "PDV_TLS_UNLISTED_CERT": str(pki.client_cert(UNLISTED)),
        "PDV_TLS_UNLISTED_KEY": str(pki.client_key(UNLISTED)),
        "PDV_REPLICAS_TARGET": "ipv4:" + ",".join(s.target for s in servers),
        "PDV_REPLICAS_API_KEY": replica_key,
        "PDV_EVENTS_HOLDER_KEY": event_keys[HOLDER],
        "PDV_EVENTS_LAGGING_KEY": event_keys[LAGGING],
    }
    node = shutil.which("node")
    assert node is not None, "node is not on PATH"
    # One test file at a time: the two servers share this machine with the rest of the suite.
    # The test files only: test/support/ holds their helpers.
    files = sorted(str(p) for p in (CLIENT_DIR / "dist" / "test").glob("*.test.js"))
    run = subprocess.run([node, "--test", "--test-concurrency=1", *files],
                         cwd=CLIENT_DIR, env=env, capture_output=True, text=True, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "# fail 0" in output and "# pass 0" not in output, output
    # The client printed no credential, and nothing it sent reached either server's log.
    assert plain_stack.api_key not in output
    assert not any(key in output for key in event_keys.values())
    server_logs = plain_stack.log.getvalue() + tls_stack.log.getvalue()
    assert plain_stack.api_key not in server_logs and replica_key not in output + server_logs
    for value in VALUES:
        assert value not in server_logs
    # round_robin reached both replicas: their tokenize entries are on two audit chains.
    assert len(chains_that_tokenized(servers[0], REPLICA_PRINCIPAL)) == 2
