"""The `pdv` command line: a newcomer's path (`pdv dev`, then the client commands) as a person runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pdv.v1 import token_pb2, token_pb2_grpc

from tests.support.stack import Stack

PDV = [sys.executable, "-m", "vault.cli.main"]
PURPOSE = "benefits_eligibility"


def pdv(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PDV, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=check)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_serving(target: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "pdv exited"
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.2)
    raise AssertionError("pdv did not start serving")


def test_client_commands_round_trip(stack: Stack, tmp_path: Path) -> None:
    env = {**os.environ, "PDV_TARGET": stack.target, "PDV_API_KEY": stack.api_key}
    out = pdv("tokenize", "--purpose", PURPOSE, "--source", "311", "full_name=Ada Lovelace", "email=Ada@Example.org",
              "ssn=123-45-6789", cwd=tmp_path, env=env)
    created = json.loads(out.stdout)
    assert created["subject_id"].startswith("sub_")
    tokens = created["tokens"]
    got = json.loads(pdv("detokenize", "--purpose", PURPOSE, tokens["email"], tokens["full_name"], cwd=tmp_path, env=env).stdout)
    assert [(g["field"], g["value"]) for g in got] == [("email", "ada@example.org"), ("full_name", "Ada Lovelace")]
    ssn = json.loads(pdv("detokenize", "--purpose", PURPOSE, "--field", "ssn", tokens["ssn"], cwd=tmp_path, env=env).stdout)
    assert ssn[0]["value"] == "123456789"
    found = json.loads(pdv("lookup", "--purpose", PURPOSE, "email", "ada@example.org", cwd=tmp_path, env=env).stdout)
    assert found == [{"subject_id": created["subject_id"], "token": tokens["email"]}]


def test_client_command_errors_are_clear_and_value_free(stack: Stack, tmp_path: Path) -> None:
    env = {**os.environ, "PDV_TARGET": stack.target, "PDV_API_KEY": stack.api_key}
    bad = pdv("tokenize", "--purpose", PURPOSE, "--source", "311", "email=CANARY-not-an-email", cwd=tmp_path, env=env, check=False)
    assert bad.returncode == 1
    assert "InvalidArgument" in bad.stderr and "email" in bad.stderr
    assert "CANARY" not in bad.stderr + bad.stdout
    wrong_key = {**env, "PDV_API_KEY": "pdvk_wrong"}
    denied = pdv("lookup", "--purpose", PURPOSE, "email", "a@example.org", cwd=tmp_path, env=wrong_key, check=False)
    assert denied.returncode == 1 and "Unauthenticated" in denied.stderr


def test_client_commands_exit_non_zero_when_an_item_fails_and_name_each_items_code(stack: Stack, tmp_path: Path) -> None:
    env = {**os.environ, "PDV_TARGET": stack.target, "PDV_API_KEY": stack.api_key}
    created = json.loads(pdv("tokenize", "--purpose", PURPOSE, "--source", "311", "email=ada@example.org", cwd=tmp_path, env=env).stdout)
    token = created["tokens"]["email"]
    unknown = "pdv_" + "A" * 22
    ok = pdv("detokenize", "--purpose", PURPOSE, token, cwd=tmp_path, env=env)
    assert json.loads(ok.stdout) == [{"token": token, "code": "OK", "field": "email", "value": "ada@example.org"}]
    mixed = pdv("detokenize", "--purpose", PURPOSE, token, unknown, cwd=tmp_path, env=env, check=False)
    assert mixed.returncode == 3, mixed.stderr  # answered, but an item failed
    assert json.loads(mixed.stdout) == [
        {"token": token, "code": "OK", "field": "email", "value": "ada@example.org"},
        {"token": unknown, "code": "NOT_FOUND", "error": "token not found"},
    ]
    # A call that fails as a whole: exit 1, its status on stderr, nothing on stdout.
    cases = [
        (["detokenize", "--purpose", "marketing", token], "INVALID_ARGUMENT", "declared purposes: benefits_eligibility, billing"),
        (["lookup", "--purpose", "marketing", "email", "ada@example.org"], "INVALID_ARGUMENT", "declared purposes"),
        (["detokenize", "--purpose", PURPOSE, "not-a-token!"], "INVALID_ARGUMENT", "items[0]: malformed token"),
        (["detokenize", "--purpose", PURPOSE, "123456789"], "INVALID_ARGUMENT", "format-preserving token needs its field"),
        (["tokenize", "--purpose", PURPOSE, "--source", "311", "email=CANARY-bad", "phone=555-CANARY"], "INVALID_ARGUMENT",
         "records[0].fields['email']"),
    ]
    for args, code, what in cases:
        failed = pdv(*args, cwd=tmp_path, env=env, check=False)
        assert failed.returncode == 1 and failed.stdout == "", (args, failed.stderr)
        assert code in failed.stderr and what in failed.stderr, failed.stderr
        assert "marketing" not in failed.stderr and "CANARY" not in failed.stderr
    both = pdv(*cases[-1][0], cwd=tmp_path, env=env, check=False).stderr
    assert "records[0].fields['email']" in both and "records[0].fields['phone']" in both


def test_pdv_dev_serves_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    """`make dev`'s command: a local OpenBao + SQLite + server; data survives a restart."""
    listen, vault_port, metrics = f"127.0.0.1:{free_port()}", free_port(), f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDV_")}

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([*PDV, "dev", "--listen", listen, "--vault-port", str(vault_port), "--metrics-listen", metrics],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_serving(listen, proc)
        return proc

    def stop(proc: subprocess.Popen) -> str:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        return err

    client_env = {**env, "PDV_TARGET": listen}  # the key comes from .pdv/dev-api-key, as the banner says
    proc = start()
    try:
        created = json.loads(pdv("tokenize", "--purpose", PURPOSE, "--source", "311", "email=dev@example.org",
                                 cwd=tmp_path, env=client_env).stdout)
        with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10) as answer:  # on in pdv dev
            assert 'pdv_rpc_calls_total{code="OK",method="TokenService/Tokenize"} 1.0' in answer.read().decode()
    finally:
        banner = stop(proc)
    assert "DEVELOPMENT MODE" in banner and "pdv tokenize" in banner
    assert f"Metrics: http://{metrics}/metrics" in banner
    creds = tmp_path / ".pdv" / "openbao" / "credentials.json"
    assert creds.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / ".pdv" / "dev-api-key").stat().st_mode & 0o777 == 0o600
    secrets_on_disk = json.loads(creds.read_text())
    assert all(value not in banner for value in secrets_on_disk.values())

    proc = start()
    try:
        got = json.loads(pdv("detokenize", "--purpose", PURPOSE, created["tokens"]["email"], cwd=tmp_path, env=client_env).stdout)
        assert got[0]["value"] == "dev@example.org"
        found = json.loads(pdv("lookup", "--purpose", PURPOSE, "email", "dev@example.org", cwd=tmp_path, env=client_env).stdout)
        assert found[0]["subject_id"] == created["subject_id"]
    finally:
        stop(proc)


def test_admin_commands_run_against_pdv_dev_with_no_settings(tmp_path: Path) -> None:
    """After `pdv dev`, `pdv audit verify`, `pdv keys status` and `pdv dispose` work from the same
    directory with no --config and no root token: over the API with the dev key (PDV_TARGET
    names the port), or with --local reading .pdv/pdv.toml."""
    listen, vault_port = f"127.0.0.1:{free_port()}", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDV_")}
    data = tmp_path / ".pdv"
    data.mkdir(mode=0o700)
    old_key = "pdvk_" + "k" * 43
    (data / "dev-api-key").write_text(old_key + "\n")  # as an older `pdv dev` wrote it
    proc = subprocess.Popen([*PDV, "dev", "--listen", listen, "--vault-port", str(vault_port),
                             "--metrics-listen", f"127.0.0.1:{free_port()}"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_serving(listen, proc)
        created = json.loads(pdv("tokenize", "--purpose", PURPOSE, "--source", "311", "email=admin@example.org",
                                 cwd=tmp_path, env={**env, "PDV_TARGET": listen}).stdout)

        # Every key file holds the secret alone: a client sending its bytes as they are gets in.
        for name in ("dev-api-key", "service-token", "admin-token"):
            raw = (data / name).read_bytes()
            assert raw and raw == raw.strip(), f"{name} has surrounding whitespace"
            assert (data / name).stat().st_mode & 0o777 == 0o600
        assert (data / "dev-api-key").read_text() == old_key  # kept, newline dropped
        with grpc.insecure_channel(listen) as channel:
            found = token_pb2_grpc.TokenServiceStub(channel).Lookup(  # type: ignore[no-untyped-call]
                token_pb2.LookupRequest(purpose=PURPOSE, queries=[token_pb2.LookupQuery(field="email", value="admin@example.org")]),
                metadata=(("x-api-key", (data / "dev-api-key").read_bytes().decode()),), timeout=10,
            )
        assert [m.token for m in found.results[0].matches] == [created["tokens"]["email"]]

        # The admin commands call AdminService with the dev API key, which pdv dev's principal
        # may use for everything (admin_principals); `--local` reads .pdv/pdv.toml instead.
        local = pdv("audit", "verify", "--local", cwd=tmp_path, env=env, check=False)
        assert local.returncode == 0 and "audit log intact" in local.stdout, local.stderr
        env = {**env, "PDV_TARGET": listen}
        verify = pdv("audit", "verify", cwd=tmp_path, env=env, check=False)
        assert verify.returncode == 0, verify.stderr
        assert "audit log intact" in verify.stdout
        status = pdv("keys", "status", cwd=tmp_path, env=env, check=False)
        assert status.returncode == 0, status.stderr
        assert "KEK latest version        v1" in status.stdout and "data_keys                 v1: 1" in status.stdout
        dry = pdv("dispose", "--dry-run", "--now", "2200-01-01T00:00:00Z", cwd=tmp_path, env=env, check=False)
        assert dry.returncode == 0, dry.stderr
        report = json.loads(dry.stdout)
        assert report["dry_run"] is True and report["values_disposed"] == {"email": 1}
        # What was only previewed is still there.
        got = json.loads(pdv("detokenize", "--purpose", PURPOSE, created["tokens"]["email"], cwd=tmp_path,
                             env={**env, "PDV_TARGET": listen}).stdout)
        assert got[0]["value"] == "admin@example.org"

        # Precedence: --config beats the dev file, and PDV_* variables beat any file.
        other = tmp_path / "other.toml"
        other.write_text('database_url = "sqlite:///other.db"\n')
        assert pdv("db", "upgrade", "--config", str(other), cwd=tmp_path, env=env).returncode == 0
        assert (tmp_path / "other.db").exists()
        assert pdv("db", "upgrade", cwd=tmp_path, env={**env, "PDV_DATABASE_URL": "sqlite:///third.db"}).returncode == 0
        assert (tmp_path / "third.db").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        _, banner = proc.communicate(timeout=60)
    assert proc.returncode == 0, banner
    config = (data / "pdv.toml").read_text()
    assert "DEVELOPMENT ONLY" in config and "vault_admin_token_file" in config
    assert "pdv audit verify" in banner and "pdv.toml" in banner
    # The config names the secret files; it holds none of the secrets.
    secrets_on_disk = [*json.loads((data / "openbao" / "credentials.json").read_text()).values(), old_key,
                       (data / "service-token").read_text(), (data / "admin-token").read_text()]
    assert all(secret not in config and secret not in banner for secret in secrets_on_disk)


def test_db_upgrade_and_serve_refuses_unmigrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PDV_")}, "PDV_DATABASE_URL": url}
    refused = pdv("serve", env={**env, "PDV_VAULT_TOKEN": "unused"}, cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "pdv db upgrade" in refused.stderr
    upgraded = pdv("db", "upgrade", env=env, cwd=tmp_path)
    from vault.storage.migrate import head_revision

    assert f"revision {head_revision()}" in upgraded.stdout


def test_config_errors_name_the_setting(tmp_path: Path) -> None:
    config = tmp_path / "pdv.toml"
    config.write_text('listen = "0.0.0.0:50051"\n')
    out = pdv("serve", "--config", str(config), cwd=tmp_path, check=False)
    assert out.returncode == 2 and "listen" in out.stderr and "loopback" in out.stderr
    config.write_text('listen = "127.0.0.1:50051"\nmax_batch_items = "lots"\n')
    out = pdv("serve", "--config", str(config), cwd=tmp_path, check=False)
    assert out.returncode == 2 and "max_batch_items" in out.stderr
    config.write_text('listen = \n')
    out = pdv("serve", "--config", str(config), cwd=tmp_path, check=False)
    assert out.returncode == 2 and "line 1" in out.stderr
