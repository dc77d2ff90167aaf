"""`pdv certs dev` and `pdv dev --tls` as a person runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.test_cli import PDV, PURPOSE, free_port, pdv
from vault.certs import DevPkiPaths


def test_certs_dev_writes_private_keys_and_prints_settings_but_no_key_material(tmp_path: Path) -> None:
    out = pdv("certs", "dev", "--out", "pki", "--principal", "intake-311", "--principal", "gis", "--hosts", "pdv.internal,10.1.2.3",
              cwd=tmp_path)
    paths = DevPkiPaths(tmp_path / "pki")
    keys = [paths.ca_key, paths.server_key, paths.client_key("intake-311"), paths.client_key("gis")]
    assert all(k.stat().st_mode & 0o777 == 0o600 for k in keys)
    assert f'tls_cert_file = "{paths.server_cert}"' in out.stdout and 'tls_principals = ["intake-311", "gis"]' in out.stdout
    printed = out.stdout + out.stderr
    assert "PRIVATE KEY" not in printed
    assert all(line not in printed for k in keys for line in k.read_text().splitlines()[1:-1])
    bad = pdv("certs", "dev", "--out", "pki", "--principal", "no/slashes", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "principal name" in bad.stderr


def test_pdv_dev_tls_serves_with_mtls_and_the_banner_says_how_to_call_it(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDV_")}
    proc = subprocess.Popen([*PDV, "dev", "--tls", "--listen", listen, "--vault-port", str(free_port()),
                             "--metrics-listen", f"127.0.0.1:{free_port()}"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = _read_until(proc, "pdv detokenize")
        certs = DevPkiPaths(tmp_path / ".pdv" / "certs")
        assert f"PDV_TLS_CA={certs.ca}" in banner and "UNAVAILABLE" in banner
        client_env = {**env, "PDV_TARGET": listen, "PDV_TLS_CA": str(certs.ca),
                      "PDV_TLS_CERT": str(certs.client_cert("dev")), "PDV_TLS_KEY": str(certs.client_key("dev"))}
        created = json.loads(pdv("tokenize", "--purpose", PURPOSE, "--source", "311", "email=tls@example.org",
                                 cwd=tmp_path, env=client_env).stdout)
        got = json.loads(pdv("detokenize", "--purpose", PURPOSE, created["tokens"]["email"], cwd=tmp_path, env=client_env).stdout)
        assert got[0]["value"] == "tls@example.org"
        plaintext = pdv("lookup", "--purpose", PURPOSE, "email", "tls@example.org", cwd=tmp_path,
                        env={**env, "PDV_TARGET": listen}, check=False)
        assert plaintext.returncode == 1 and "Unavailable" in plaintext.stderr
        assert certs.client_key("dev").stat().st_mode & 0o777 == 0o600
        assert "PRIVATE KEY" not in banner
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0


def _read_until(proc: subprocess.Popen, marker: str, timeout: float = 60) -> str:
    """stderr up to the line holding `marker`; a thread keeps draining the pipe afterwards."""
    assert proc.stderr is not None
    lines: list[str] = []
    found = threading.Event()

    def drain() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            lines.append(line)
            if marker in line:
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found.wait(0.2):
        assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
    return "".join(lines)
