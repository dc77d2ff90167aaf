"""Refused authentications reach the tamper-evident access log, without the key that was tried.

Calls go through a real server (SQLite and PostgreSQL); the log is read back the way an
auditor would, with `pdv audit query`, `export` and `verify`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path

import pytest
from pdv_client import PdvClient, Record
from pdv_client.errors import Unauthenticated

from tests.support.stack import PRINCIPAL, Stack, start_stack
from vault.cli.main import main as pdv_main
from vault.keys.openbao import OpenBaoServer

PURPOSE = "benefits_eligibility"


def _audit(args: list[str], stack_settings: object, openbao: OpenBaoServer, vault_token: str,
           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setenv("PDV_DATABASE_URL", stack_settings.database_url)  # type: ignore[attr-defined]
    monkeypatch.setenv("PDV_VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("PDV_VAULT_TOKEN", vault_token)
    # The stack keeps no checkpoint file, and says so: verify needs to be told the same.
    monkeypatch.setenv("PDV_AUDIT_EXTERNAL_RECORD", "false")
    capsys.readouterr()
    # verify reads the database itself (--local): this checks the log, not the admin API
    code = pdv_main(["audit", *args, *(["--local"] if args[0] == "verify" else [])])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _forms(secret: str) -> set[str]:
    raw = secret.encode()
    return {secret, secret[5:], raw.hex(), hashlib.sha256(raw).hexdigest(), base64.b64encode(raw).decode().rstrip("="),
            base64.urlsafe_b64encode(raw).decode().rstrip("=")}


def _anonymous(stack: Stack) -> PdvClient:
    client = PdvClient(stack.target, timeout=10, options=[("grpc.use_local_subchannel_pool", 1)])
    stack.clients.append(client)
    return client


def test_a_wrong_key_and_no_credentials_are_logged_without_the_key(
    stack: Stack, openbao: OpenBaoServer, vault_token: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong_key = "pdvk_" + secrets.token_urlsafe(24)
    with pytest.raises(Unauthenticated):
        stack.client(api_key=wrong_key).tokenize([Record({"email": "x@example.org"})], purpose=PURPOSE, source="311")
    with pytest.raises(Unauthenticated):
        _anonymous(stack).lookup("email", "x@example.org", purpose=PURPOSE)
    stack.client().lookup("email", "x@example.org", purpose=PURPOSE)  # a granted call, for contrast

    code, out = _audit(["query", "--action", "authenticate"], stack.settings, openbao, vault_token, monkeypatch, capsys)
    assert code == 0
    refused = sorted((r["principal"], r["purpose"], r["field"], r["outcome"]) for r in _rows(out))
    assert refused == [
        ("-", "/pdv.v1.TokenService/Lookup", "no_credentials", "unauthenticated"),
        ("-", "/pdv.v1.TokenService/Tokenize", "unknown_api_key", "unauthenticated"),
    ]

    code, out = _audit(["export"], stack.settings, openbao, vault_token, monkeypatch, capsys)
    assert code == 0
    rows = _rows(out)
    assert {r["principal"] for r in rows} == {"-", PRINCIPAL}
    assert {r["action"] for r in rows} == {"authenticate", "lookup"}
    assert [f for f in _forms(wrong_key) if f in out] == []
    assert [f for f in _forms(wrong_key) if f in stack.log.getvalue()] == []

    code, out = _audit(["verify"], stack.settings, openbao, vault_token, monkeypatch, capsys)
    assert code == 0 and "audit log intact" in out


def test_a_flood_of_refusals_is_counted_not_written_row_by_row(
    openbao: OpenBaoServer, vault_token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack = start_stack(openbao, f"sqlite:///{tmp_path / 'pdv.db'}", vault_token,
                        auth_refusals_per_second=0.01, auth_refusals_burst=3)
    try:
        outsider = stack.client(api_key="pdvk_" + secrets.token_urlsafe(24))
        for _ in range(40):
            with pytest.raises(Unauthenticated):
                outsider.lookup("email", "x@example.org", purpose=PURPOSE)
    finally:
        stack.stop()  # writes the count still pending

    code, out = _audit(["query", "--action", "authenticate"], stack.settings, openbao, vault_token, monkeypatch, capsys)
    assert code == 0
    rows = _rows(out)
    singles = [r for r in rows if r["field"] == "unknown_api_key"]
    summaries = [r for r in rows if r["field"] == "over_log_rate"]
    assert len(singles) == 3
    assert summaries and all(r["outcome"] == "unauthenticated" and r["principal"] == "-" for r in summaries)
    assert len(singles) + sum(int(r["request_id"].removeprefix("suppressed-")) for r in summaries) == 40
    code, out = _audit(["verify"], stack.settings, openbao, vault_token, monkeypatch, capsys)
    assert code == 0 and "audit log intact" in out
