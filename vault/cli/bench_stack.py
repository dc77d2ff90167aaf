"""The throwaway stack `pdv bench` measures: OpenBao, a database and a `pdv serve` process."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pdv_client.raw import wait_until_serving
from pdv_client.tls import tls_credentials

from vault.certs import write_dev_pki
from vault.cli.bench_records import BENCH_POLICY
from vault.config import hash_api_key
from vault.keys.openbao import OpenBaoServer, create_service_token, free_loopback_port, provision_transit
from vault.keys.transit import TransitKeyProvider, make_client
from vault.secret import SecretBytes
from vault.storage import migrate
from vault.storage.engine import create_store_engine
from vault.storage.scratch import create_scratch_database, drop_database

# A second authenticated principal that the bench policy grants nothing: its detokenize
# calls are refused at the caller level (the oracle figure needs one).
STRANGER = "bench-stranger"


class BenchStack:
    def __init__(
        self, database: str, pg_admin_url: str, api_key_sha256: str, processes: int = 1, tls: bool = False
    ) -> None:
        self.database, self.pg_admin_url, self.api_key_sha256 = database, pg_admin_url, api_key_sha256
        self.processes = processes
        self.pki = write_dev_pki(Path(tempfile.mkdtemp(prefix="pdv-bench-pki-")), ["bench", STRANGER]) if tls else None
        self.workdir = Path(tempfile.mkdtemp(prefix="pdv-bench-"))
        self.stranger_key = "pdvk_" + secrets.token_urlsafe(24)
        self.bao = OpenBaoServer(self.workdir / "openbao")
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = free_loopback_port()
        self.url = ""

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "BenchStack":
        self.bao.start()
        admin = self.bao.client()
        provision_transit(admin)
        self.token = create_service_token(admin, "transit", "pdv-kek")
        if self.database == "sqlite":
            self.url = f"sqlite:///{self.workdir / 'pdv.db'}"
        else:
            self.url = create_scratch_database(self.pg_admin_url, "pdv_bench")
        engine = create_store_engine(self.url)
        migrate.upgrade(engine)
        engine.dispose()
        self.start_server()
        return self

    @property
    def checkpoint_file(self) -> Path:
        return self.workdir / "audit-checkpoints.jsonl"

    def checkpoint_lines(self) -> int:
        """Lines in the server's checkpoint file so far (one per signed checkpoint)."""
        return len(self.checkpoint_file.read_bytes().splitlines()) if self.checkpoint_file.exists() else 0

    def start_server(self, **settings: str) -> None:
        """Start `pdv serve`; `settings` (name → value) override the bench's PDV_* settings."""
        env = dict(os.environ)
        env.update({
            "PDV_LISTEN": self.target, "PDV_DATABASE_URL": self.url, "PDV_VAULT_ADDR": self.bao.addr,
            "PDV_VAULT_TOKEN": self.token, "PDV_PROCESSES": str(self.processes),
            "PDV_API_KEYS": json.dumps([
                {"principal": "bench", "sha256": self.api_key_sha256},
                {"principal": STRANGER, "sha256": hash_api_key(self.stranger_key)},
            ]),
            "PDV_ADMIN_PRINCIPALS": json.dumps(["bench"]),
            **self._tls_env(),
            "PDV_POLICY_PATH": str(self._policy_file()),  # every call goes through the policy checks
            "PDV_AUDIT_CHECKPOINT_FILE": str(self.checkpoint_file),  # anchored as in production
            **{f"PDV_{name.upper()}": value for name, value in settings.items()},
        })
        log = open(self.workdir / "server.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "vault.cli.main", "serve"], env=env, stdout=log, stderr=log)
        self._wait_serving()

    def _tls_env(self) -> dict[str, str]:
        if self.pki is None:
            return {}
        return {
            "PDV_TLS_CERT_FILE": str(self.pki.server_cert), "PDV_TLS_KEY_FILE": str(self.pki.server_key),
            "PDV_TLS_CLIENT_CA_FILE": str(self.pki.ca),
        }

    def _policy_file(self) -> Path:
        path = self.workdir / "policy.yaml"
        path.write_text(BENCH_POLICY)
        return path

    def credentials(self, principal: str = "bench"):  # type: ignore[no-untyped-def]
        """Client credentials presenting `principal`'s certificate (None without TLS)."""
        if self.pki is None:
            return None
        return tls_credentials(
            self.pki.ca.read_bytes(), self.pki.client_cert(principal).read_bytes(), self.pki.client_key(principal).read_bytes()
        )

    @property
    def server_pid(self) -> int:
        assert self.proc is not None, "the bench's server is not running"
        return self.proc.pid

    def restart_server(self, **settings: str) -> None:
        self.stop_server()
        self.start_server(**settings)

    def stop_server(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def naive_transit_rate(self, fields: int) -> float:
        """Fields/s when every field value is sent to Transit encrypt on its own."""
        provider = TransitKeyProvider(make_client(self.bao.addr, self.token), "transit", "pdv-kek")
        values = [SecretBytes(f"r{i}@example.org".encode()) for i in range(fields)]
        start = time.perf_counter()
        for value in values:
            provider.wrap_keys([value])
        return fields / (time.perf_counter() - start)

    def _wait_serving(self, timeout: float = 120) -> None:
        try:
            wait_until_serving(
                self.target, timeout, alive=lambda: self.proc is not None and self.proc.poll() is None,
                credentials=self.credentials(),
            )
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}; see {self.workdir / 'server.log'}") from None

    def __exit__(self, *exc: object) -> None:
        self.stop_server()
        self.bao.stop()
        if self.database == "postgresql" and self.url:
            drop_database(self.pg_admin_url, self.url)
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.pki is not None:
            shutil.rmtree(self.pki.ca.parent, ignore_errors=True)

