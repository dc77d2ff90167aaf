"""mTLS end to end: a real server on 127.0.0.1:0 with dev certificates, called through PdvClient.

A certificate the handshake rejects (none, foreign CA, expired) never reaches the
interceptor: the client sees UNAVAILABLE. A valid certificate whose principal is not in
tls_principals is PERMISSION_DENIED.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from pdv_client import PdvClient, PermissionDenied, Record, Unavailable
from sqlalchemy import text

from tests.support.stack import PRINCIPAL, Stack, start_stack
from vault.certs import DevPkiPaths, Issued, make_ca, make_client_cert, write_dev_pki
from vault.keys.openbao import OpenBaoServer

PURPOSE = "benefits_eligibility"
CERT_PRINCIPAL = "caseworker-app"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPkiPaths:
    return write_dev_pki(tmp_path_factory.mktemp("pki"), [CERT_PRINCIPAL, "not-listed"], ["localhost", "127.0.0.1"])


def _tls_settings(pki: DevPkiPaths, **extra: Any) -> dict[str, Any]:
    return {"tls_cert_file": pki.server_cert, "tls_key_file": pki.server_key, "tls_client_ca_file": pki.ca, **extra}


@pytest.fixture
def tls_stack(openbao: OpenBaoServer, vault_token: str, database_url: str, pki: DevPkiPaths) -> Iterator[Stack]:
    s = start_stack(openbao, database_url, vault_token, **_tls_settings(pki, tls_principals=[CERT_PRINCIPAL]))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def sqlite_tls_stack(openbao: OpenBaoServer, vault_token: str, tmp_path: Path, pki: DevPkiPaths) -> Iterator[Stack]:
    s = start_stack(openbao, f"sqlite:///{tmp_path / 'pdv.db'}", vault_token,
                    **_tls_settings(pki, tls_principals=[CERT_PRINCIPAL]))
    try:
        yield s
    finally:
        s.stop()


def tls_client(stack: Stack, pki: DevPkiPaths, cert: bytes | None, key: bytes | None, api_key: str | None = None) -> PdvClient:
    credentials = grpc.ssl_channel_credentials(pki.ca.read_bytes(), private_key=key, certificate_chain=cert)
    client = PdvClient(stack.target, api_key=api_key, credentials=credentials, timeout=10,
                       options=[("grpc.use_local_subchannel_pool", 1)])
    stack.clients.append(client)
    return client


def cert_client(stack: Stack, pki: DevPkiPaths, principal: str = CERT_PRINCIPAL, api_key: str | None = None) -> PdvClient:
    return tls_client(stack, pki, pki.client_cert(principal).read_bytes(), pki.client_key(principal).read_bytes(), api_key)


def issued_client(stack: Stack, pki: DevPkiPaths, issued: Issued) -> PdvClient:
    return tls_client(stack, pki, issued.cert_pem(), issued.key_pem())


def logged_principals(stack: Stack) -> set[str]:
    with stack.app.store.engine.connect() as conn:
        return set(conn.execute(text("SELECT DISTINCT principal FROM access_log")).scalars())


def refusals(stack: Stack) -> list[tuple[str, str, str]]:
    """(principal, reason, outcome) of each refused authentication in the access log."""
    with stack.app.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT principal, field, outcome FROM access_log WHERE action = 'authenticate' ORDER BY id"))
        return [tuple(r) for r in rows]


def test_round_trip_with_a_client_certificate_logs_its_principal(tls_stack: Stack, pki: DevPkiPaths) -> None:
    client = cert_client(tls_stack, pki)
    (rec,) = client.tokenize([Record({"email": "ada@example.org"})], purpose=PURPOSE, source="311")
    assert client.detokenize_one(rec.tokens["email"], purpose=PURPOSE) == "ada@example.org"
    assert logged_principals(tls_stack) == {CERT_PRINCIPAL}


def test_api_keys_still_work_over_tls_and_take_precedence(sqlite_tls_stack: Stack, pki: DevPkiPaths) -> None:
    client = cert_client(sqlite_tls_stack, pki, api_key=sqlite_tls_stack.api_key)
    client.tokenize([Record({"email": "key@example.org"})], purpose=PURPOSE, source="311")
    assert logged_principals(sqlite_tls_stack) == {PRINCIPAL}


def test_a_principal_outside_tls_principals_is_permission_denied(sqlite_tls_stack: Stack, pki: DevPkiPaths) -> None:
    with pytest.raises(PermissionDenied):
        cert_client(sqlite_tls_stack, pki, "not-listed").tokenize(
            [Record({"email": "x@example.org"})], purpose=PURPOSE, source="311")
    assert refusals(sqlite_tls_stack) == [("not-listed", "principal_not_accepted", "denied")]


def test_no_client_certificate_fails_the_handshake(sqlite_tls_stack: Stack, pki: DevPkiPaths) -> None:
    with pytest.raises(Unavailable):
        tls_client(sqlite_tls_stack, pki, None, None).lookup("email", "x@example.org", purpose=PURPOSE)


def test_a_certificate_from_another_ca_fails_the_handshake(sqlite_tls_stack: Stack, pki: DevPkiPaths) -> None:
    foreign = make_client_cert(make_ca("Someone else's CA"), CERT_PRINCIPAL)
    with pytest.raises(Unavailable):
        issued_client(sqlite_tls_stack, pki, foreign).lookup("email", "x@example.org", purpose=PURPOSE)


def test_an_expired_certificate_fails_the_handshake(sqlite_tls_stack: Stack, pki: DevPkiPaths) -> None:
    from vault.certs import load_issued

    ca = load_issued(pki.ca, pki.ca_key)
    expired = make_client_cert(ca, CERT_PRINCIPAL, now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30), days=1)
    with pytest.raises(Unavailable):
        issued_client(sqlite_tls_stack, pki, expired).lookup("email", "x@example.org", purpose=PURPOSE)
    # The same CA's current certificate still works, so it was the expiry that failed.
    cert_client(sqlite_tls_stack, pki).lookup("email", "x@example.org", purpose=PURPOSE)


def test_a_plaintext_client_cannot_talk_to_a_tls_server(sqlite_tls_stack: Stack) -> None:
    with pytest.raises(Unavailable):
        sqlite_tls_stack.client(timeout=10).lookup("email", "x@example.org", purpose=PURPOSE)


def test_client_commands_call_a_tls_server_with_ca_cert_and_key(sqlite_tls_stack: Stack, pki: DevPkiPaths, tmp_path: Path) -> None:
    from tests.test_cli import pdv

    env = {k: v for k, v in os.environ.items() if not k.startswith("PDV_")}
    env |= {"PDV_TARGET": sqlite_tls_stack.target, "PDV_TLS_CA": str(pki.ca)}
    flags = ["--cert", str(pki.client_cert(CERT_PRINCIPAL)), "--key", str(pki.client_key(CERT_PRINCIPAL))]
    out = pdv("tokenize", *flags, "--purpose", PURPOSE, "--source", "311", "email=cli@example.org", cwd=tmp_path, env=env)
    token = json.loads(out.stdout)["tokens"]["email"]
    got = json.loads(pdv("detokenize", *flags, "--purpose", PURPOSE, token, cwd=tmp_path, env=env).stdout)
    assert got[0]["value"] == "cli@example.org"
    assert logged_principals(sqlite_tls_stack) == {CERT_PRINCIPAL}
    no_cert = pdv("lookup", "--purpose", PURPOSE, "email", "cli@example.org", cwd=tmp_path, env=env, check=False)
    assert no_cert.returncode != 0
    half = pdv("lookup", "--cert", flags[1], "--purpose", PURPOSE, "email", "x@example.org", cwd=tmp_path, env=env, check=False)
    assert half.returncode == 2 and "--cert and --key" in half.stderr
