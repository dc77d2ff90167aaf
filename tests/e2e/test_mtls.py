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
from pdv_client import PdvClient, PermissionDenied, Record, Unauthenticated, Unavailable
from sqlalchemy import text

from tests.support.stack import PRINCIPAL, Stack, start_stack
from vault.certs import DevPkiPaths, Issued, make_ca, make_client_cert, make_crl, write_dev_pki
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


# --- revocation (tls_crl_file) ------------------------------------------------------------

REVOKED = "revoked-app"


@pytest.fixture
def crl_pki(tmp_path: Path) -> DevPkiPaths:
    return write_dev_pki(tmp_path / "pki", [CERT_PRINCIPAL, REVOKED], ["localhost", "127.0.0.1"])


def revoke(pki: DevPkiPaths, principal: str) -> None:
    from vault.cli.main import main as pdv_main

    assert pdv_main(["certs", "revoke", "--out", str(pki.out), "--principal", principal]) == 0


def crl_stack(openbao: OpenBaoServer, vault_token: str, database_url: str, pki: DevPkiPaths) -> Stack:
    return start_stack(openbao, database_url, vault_token, **_tls_settings(pki, tls_crl_file=pki.crl))


def test_a_revoked_certificate_is_unauthenticated_and_logged(openbao: OpenBaoServer, vault_token: str,
                                                              database_url: str, crl_pki: DevPkiPaths) -> None:
    revoke(crl_pki, REVOKED)
    stack = crl_stack(openbao, vault_token, database_url, crl_pki)
    try:
        with pytest.raises(Unauthenticated, match="client certificate revoked"):
            cert_client(stack, crl_pki, REVOKED).tokenize([Record({"email": "r@example.org"})], purpose=PURPOSE, source="311")
        # A valid API key does not rescue a connection made with a revoked certificate.
        with pytest.raises(Unauthenticated):
            cert_client(stack, crl_pki, REVOKED, api_key=stack.api_key).lookup("email", "r@example.org", purpose=PURPOSE)
        # The same CA's other certificate still works.
        cert_client(stack, crl_pki).tokenize([Record({"email": "ok@example.org"})], purpose=PURPOSE, source="311")
        assert refusals(stack) == [(REVOKED, "certificate_revoked", "unauthenticated")] * 2
        assert logged_principals(stack) == {REVOKED, CERT_PRINCIPAL}
    finally:
        stack.stop()


def test_a_reload_takes_a_new_revocation_without_a_restart(openbao: OpenBaoServer, vault_token: str, tmp_path: Path,
                                                            crl_pki: DevPkiPaths) -> None:
    import signal

    from vault.cli.serve import reload_policy, reload_policy_on_sighup

    stack = crl_stack(openbao, vault_token, f"sqlite:///{tmp_path / 'pdv.db'}", crl_pki)
    try:
        client = cert_client(stack, crl_pki)
        client.lookup("email", "x@example.org", purpose=PURPOSE)
        revoke(crl_pki, CERT_PRINCIPAL)
        client.lookup("email", "x@example.org", purpose=PURPOSE)  # the server holds the list it loaded
        previous = reload_policy_on_sighup(stack.app, stack.server)
        try:
            os.kill(os.getpid(), signal.SIGHUP)
        finally:
            signal.signal(signal.SIGHUP, previous)
        assert stack.server.revocations is not None and stack.server.revocations.revoked_count == 1
        with pytest.raises(Unauthenticated):  # the open connection, and a new one
            client.lookup("email", "x@example.org", purpose=PURPOSE)
        with pytest.raises(Unauthenticated):
            cert_client(stack, crl_pki).lookup("email", "x@example.org", purpose=PURPOSE)
        cert_client(stack, crl_pki, REVOKED).lookup("email", "x@example.org", purpose=PURPOSE)

        # A CRL another CA signed is refused on reload; the list in force stays.
        foreign = make_ca("Someone else's CA")
        crl_pki.crl.write_bytes(make_crl(foreign, []))
        assert reload_policy(stack.app, stack.server) is False
        assert "CRL not reloaded" in stack.log.getvalue()
        with pytest.raises(Unauthenticated):
            cert_client(stack, crl_pki).lookup("email", "x@example.org", purpose=PURPOSE)
    finally:
        stack.stop()


def test_a_crl_that_does_not_verify_stops_the_server_at_start(crl_pki: DevPkiPaths, tmp_path: Path) -> None:
    from vault.config import load_settings
    from vault.errors import ConfigError
    from vault.tls import load_server_tls

    bad = tmp_path / "foreign-crl.pem"
    bad.write_bytes(make_crl(make_ca("PDV dev CA"), []))  # same name, another key
    with pytest.raises(ConfigError, match="tls_crl_file .*not signed by a CA of tls_client_ca_file"):
        load_server_tls(load_settings(**_tls_settings(crl_pki, tls_crl_file=bad)))
    bad.write_text("not a crl")
    with pytest.raises(ConfigError, match="not a PEM certificate revocation list"):
        load_server_tls(load_settings(**_tls_settings(crl_pki, tls_crl_file=bad)))
    with pytest.raises(ConfigError, match="tls_crl_file needs TLS"):
        load_settings(tls_crl_file=crl_pki.crl)
    loaded = load_server_tls(load_settings(**_tls_settings(crl_pki, tls_crl_file=crl_pki.crl)))
    assert loaded is not None and loaded.revocations is not None and loaded.revocations.revoked_count == 0


def test_pdv_certs_revoke_only_revokes_the_dev_cas_certificates(crl_pki: DevPkiPaths, tmp_path: Path) -> None:
    from tests.test_cli import pdv

    foreign = tmp_path / "foreign.pem"
    foreign.write_bytes(make_client_cert(make_ca("Someone else's CA"), CERT_PRINCIPAL).cert_pem())
    refused = pdv("certs", "revoke", "--out", str(crl_pki.out), "--cert", str(foreign), cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "not issued by the CA" in refused.stderr
    done = pdv("certs", "revoke", "--out", str(crl_pki.out), "--principal", REVOKED, cwd=tmp_path)
    again = pdv("certs", "revoke", "--out", str(crl_pki.out), "--cert", str(crl_pki.client_cert(REVOKED)), cwd=tmp_path)
    assert done.stdout.startswith("revoked: serial") and again.stdout.startswith("already revoked")
    assert "PRIVATE KEY" not in done.stdout + done.stderr
