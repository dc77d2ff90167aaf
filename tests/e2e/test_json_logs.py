"""Structured logs: with log_format = "json" (or `pdv serve --log-format json`) every line the
server writes is one JSON object, and each PDV call is logged once with its request id,
principal, method, status and duration. A caller's plain `x-request-id` is kept and echoed in
the trailing metadata; anything else is replaced by a fresh id. (No value, token or subject id
in them: tests/e2e/test_canaries.py and test_log_hygiene.py search the JSON log too.)"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from pdv.v1 import token_pb2, token_pb2_grpc
from pdv_client import PdvClient, Record
from pdv_client.errors import InvalidArgument, Unauthenticated
from pdv_client.raw import wait_until_serving

from tests.support.stack import PRINCIPAL, Stack, migrate_url
from vault.config import hash_api_key
from vault.keys.openbao import OpenBaoServer, free_loopback_port

PURPOSE = "benefits_eligibility"
FIELDS = {"timestamp", "level", "logger", "message"}
CALL_FIELDS = {"request_id", "principal", "method", "code", "duration_ms"}


def rpc_records(text: str) -> list[dict]:
    return [r for r in map(json.loads, filter(None, text.splitlines())) if r["logger"] == "pdv.rpc"]


def test_each_call_is_one_json_record_with_its_request_id(stack: Stack) -> None:
    client = stack.client()
    (record,) = client.tokenize([Record({"email": "json@example.org"})], purpose=PURPOSE, source="311")
    client.detokenize([record.tokens["email"]], purpose=PURPOSE)
    with pytest.raises(InvalidArgument):
        client.detokenize([record.tokens["email"]], purpose="")
    with pytest.raises(Unauthenticated):
        stack.client(api_key="pdvk_" + secrets.token_urlsafe(24)).detokenize([record.tokens["email"]], purpose=PURPOSE)
    with grpc.insecure_channel(stack.target) as channel:
        stub = token_pb2_grpc.TokenServiceStub(channel)
        request = token_pb2.DetokenizeRequest(purpose=PURPOSE, items=[token_pb2.DetokenizeItem(token=record.tokens["email"])])
        _, call = stub.Detokenize.with_call(request, metadata=[("x-api-key", stack.api_key), ("x-request-id", "case-7.a_b")],
                                            timeout=10)
        assert ("x-request-id", "case-7.a_b") in call.trailing_metadata()
        _, odd = stub.Detokenize.with_call(request, metadata=[("x-api-key", stack.api_key), ("x-request-id", "a b/c")],
                                           timeout=10)
        fresh = dict(odd.trailing_metadata())["x-request-id"]
        assert fresh != "a b/c" and len(fresh) == 16

    lines = [json.loads(line) for line in stack.json_log.getvalue().splitlines() if line]
    assert lines and all(FIELDS <= set(line) for line in lines)
    calls = rpc_records(stack.json_log.getvalue())
    assert [(c["method"], c["code"], c["principal"]) for c in calls] == [
        ("TokenService/Tokenize", "OK", PRINCIPAL),
        ("TokenService/Detokenize", "OK", PRINCIPAL),
        ("TokenService/Detokenize", "INVALID_ARGUMENT", PRINCIPAL),
        ("TokenService/Detokenize", "UNAUTHENTICATED", "-"),
        ("TokenService/Detokenize", "OK", PRINCIPAL),
        ("TokenService/Detokenize", "OK", PRINCIPAL),
    ]
    assert all(CALL_FIELDS <= set(c) and c["duration_ms"] >= 0 and c["level"] == "INFO" for c in calls)
    assert len({c["request_id"] for c in calls}) == len(calls)
    assert [c["request_id"] for c in calls[-2:]] == ["case-7.a_b", fresh]


@pytest.mark.parametrize("how", ["flag", "setting"])
def test_pdv_serve_writes_json_lines(openbao: OpenBaoServer, vault_token: str, tmp_path: Path, how: str) -> None:
    database_url = f"sqlite:///{tmp_path / 'pdv.db'}"
    migrate_url(database_url)
    api_key = "pdvk_" + secrets.token_urlsafe(24)
    target, metrics = f"127.0.0.1:{free_loopback_port()}", f"127.0.0.1:{free_loopback_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDV_")}
    env.update({
        "PDV_LISTEN": target, "PDV_DATABASE_URL": database_url, "PDV_VAULT_ADDR": openbao.addr,
        "PDV_VAULT_TOKEN": vault_token, "PDV_DEV_POLICY": "true", "PDV_METRICS_ADDRESS": metrics,
        "PDV_API_KEYS": json.dumps([{"principal": PRINCIPAL, "sha256": hash_api_key(api_key)}]),
        **({"PDV_LOG_FORMAT": "json"} if how == "setting" else {}),
    })
    argv = [sys.executable, "-m", "vault.cli.main", "serve", *(["--log-format", "json"] if how == "flag" else [])]
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            wait_until_serving(target, 60, alive=lambda: server.poll() is None)
            with PdvClient(target, api_key=api_key) as client:
                client.tokenize([Record({"email": "serve-json@example.org"})], purpose=PURPOSE, source="311")
            with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10) as answer:
                assert 'pdv_rpc_calls_total{code="OK",method="TokenService/Tokenize"} 1.0' in answer.read().decode()
        finally:
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=120) == 0
    text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    assert any(line["logger"] == "pdv.server" and "serving on port" in line["message"] for line in lines)
    (call,) = rpc_records(text)
    assert (call["method"], call["code"], call["principal"]) == ("TokenService/Tokenize", "OK", PRINCIPAL)
