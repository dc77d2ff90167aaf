"""`processes = 2`: two server processes share one port and one database, each with its own audit chain."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import signal
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pdv_client import PdvClient
from pdv_client.raw import wait_until_serving

from tests.support.stack import migrate_url
from vault.cli.main import main as pdv_main
from vault.config import hash_api_key
from vault.keys.openbao import OpenBaoServer, free_loopback_port

PURPOSE = "benefits_eligibility"
CONNECTIONS = 24  # the kernel spreads connections over the processes: all 24 on one would be a 1-in-8-million draw
CALLS = 10


def two_free_ports() -> int:
    """A loopback port free together with the next one."""
    for _ in range(100):
        port = free_loopback_port()
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise AssertionError("no two neighbouring free loopback ports")


def tokenize_calls(address: str) -> float:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "pdv_rpc_calls_total" and s.labels == {"method": "TokenService/Tokenize", "code": "OK"})


def test_two_processes_serve_one_database_and_each_chains_its_own_log(
    openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    migrate_url(database_url)
    api_key = "pdvk_" + secrets.token_urlsafe(24)
    target = f"127.0.0.1:{free_loopback_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDV_")}
    settings = {
        "PDV_LISTEN": target, "PDV_DATABASE_URL": database_url, "PDV_VAULT_ADDR": openbao.addr,
        "PDV_VAULT_TOKEN": vault_token, "PDV_PROCESSES": "2", "PDV_DEV_POLICY": "true",
        "PDV_API_KEYS": json.dumps([{"principal": "intake-311", "sha256": hash_api_key(api_key)}]),
        "PDV_AUDIT_CHECKPOINT_FILE": str(tmp_path / "checkpoints.jsonl"),
        "PDV_METRICS_ADDRESS": f"127.0.0.1:{two_free_ports()}",  # worker i serves its metrics on port + i
    }
    server = subprocess.Popen([sys.executable, "-m", "vault.cli.main", "serve"], env={**env, **settings}, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(target, 60, alive=lambda: server.poll() is None)

        def one_connection(n: int) -> list[tuple[str, str]]:
            # A channel of its own, so each client is one more TCP connection for the kernel to place.
            with PdvClient(target, api_key=api_key, options=[("grpc.use_local_subchannel_pool", 1)]) as client:
                out = []
                for i in range(CALLS):
                    value = f"p{n}-{i}@example.org"
                    (record,) = client.tokenize([{"fields": {"email": value}}], purpose=PURPOSE, source="311")
                    assert client.detokenize_one(record.tokens["email"], purpose=PURPOSE) == value
                    out.append((record.subject_id, value))
                return out

        with ThreadPoolExecutor(max_workers=8) as pool:
            stored = [pair for pairs in pool.map(one_connection, range(CONNECTIONS)) for pair in pairs]
        assert len({subject for subject, _ in stored}) == CONNECTIONS * CALLS
        base = int(settings["PDV_METRICS_ADDRESS"].rpartition(":")[2])
        per_worker = [tokenize_calls(f"127.0.0.1:{base + i}") for i in range(2)]
        assert sum(per_worker) == CONNECTIONS * CALLS and all(n > 0 for n in per_worker)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0

    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    assert pdv_main(["audit", "verify", "--local"]) == 0
    chains = re.search(r"audit log intact: (\d+) entries in (\d+) chain", capsys.readouterr().out)
    assert chains is not None
    assert int(chains[1]) >= CONNECTIONS * CALLS * 2  # every tokenize and every read was logged
    assert int(chains[2]) >= 2  # one chain per process: neither waited on the other's
