"""PDV over several Vault addresses, end to end: a dead node in front of the live one costs the
caller nothing, and with every node gone calls fail UNAVAILABLE within vault_retry_seconds
(plus one last attempt), are logged as such, and write nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pdv_client import Record
from pdv_client.errors import Unavailable
from sqlalchemy import text

from tests.support.stack import service_token, start_stack
from vault.keys.openbao import OpenBaoServer, free_loopback_port

PURPOSE = "benefits_eligibility"
RETRY_SECONDS = 2.0


def dead_addr() -> str:
    return f"http://127.0.0.1:{free_loopback_port()}"


def person(n: int) -> dict[str, str]:
    return {"full_name": "Grace Hopper", "email": f"grace{n}@example.org"}


def test_a_dead_vault_address_in_front_costs_the_caller_nothing(openbao: OpenBaoServer, vault_token: str,
                                                                 database_url: str) -> None:
    stack = start_stack(openbao, database_url, vault_token, vault_addr=f"{dead_addr()},{openbao.addr}",
                        vault_retry_seconds=RETRY_SECONDS)
    try:
        client = stack.client()
        for n in range(3):
            stack.app.keyring.clear()  # every call needs Vault: no cached or spare DEK
            (result,) = client.tokenize([Record(person(n))], purpose=PURPOSE, source="311")
            stack.app.keyring.clear()
            assert client.detokenize_one(result.tokens["email"], purpose=PURPOSE) == f"grace{n}@example.org"
    finally:
        stack.stop()


def test_every_vault_address_dead_is_unavailable_within_the_bound(tmp_path: Path, database_url: str) -> None:
    bao = OpenBaoServer(tmp_path / "openbao").start()
    try:
        stack = start_stack(bao, database_url, service_token(bao), vault_addr=[dead_addr(), bao.addr],
                            vault_retry_seconds=RETRY_SECONDS)
        try:
            client = stack.client()
            (kept,) = client.tokenize([Record(person(1))], purpose=PURPOSE, source="311")
            bao.kill()
            stack.app.keyring.clear()

            started = time.monotonic()
            with pytest.raises(Unavailable) as error:
                client.detokenize([kept.tokens["email"]], purpose=PURPOSE)
            elapsed = time.monotonic() - started
            assert "vault" in error.value.message
            # Refused connections fail at once, so the whole window is spent retrying; the
            # bound is the window, one last attempt (>= 0.5 s) and a busy machine's slack.
            assert RETRY_SECONDS <= elapsed < RETRY_SECONDS + 4.0
            with stack.app.store.engine.connect() as conn:
                outcomes = list(conn.execute(text(
                    "SELECT outcome FROM access_log WHERE action = 'detokenize' AND token = :t ORDER BY id"),
                    {"t": kept.tokens["email"]}).scalars())
            assert outcomes[-1] == "unavailable"
        finally:
            stack.stop()
    finally:
        bao.kill()
