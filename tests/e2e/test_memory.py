"""Bounded memory: bursts of large calls, with or without credentials, neither grow a real
`pdv serve` process past a stated bound nor leave it big afterwards.

The bound, from the design: a message over max_message_bytes is refused by gRPC as it
arrives; an unauthenticated call is refused before its message is read; an authenticated
one is read on a worker thread, so at most max_workers messages are held at once, each
about three times over (the bytes, grpc's buffers, the decode attempt). Shortly after a
large or refused call the server hands freed heap back to the system (malloc_trim).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from pdv_client.raw import wait_until_serving

from tests.support.stack import migrate_url
from vault.config import hash_api_key
from vault.keys.openbao import OpenBaoServer, free_loopback_port

MiB = 1 << 20
MAX_MESSAGE = 4 * MiB  # the default max_message_bytes
WORKERS = 16  # the default max_workers
CALLS = 32
PEAK_BOUND = WORKERS * 3 * MAX_MESSAGE  # growth over idle while the burst lasts
AFTER_BOUND = 32 * MiB  # growth over idle once it is over
TOKENIZE = "/pdv.v1.TokenService/Tokenize"


def memory(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak since start: no sampling to miss it), in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(rest.split()[0]) * 1024
    return out


def burst(target: str, payload: bytes, api_keys: list[str]) -> list[grpc.StatusCode]:
    """CALLS calls at once, one connection each, with the keys taken in turn."""
    def one(i: int) -> grpc.StatusCode:
        options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_send_message_length", -1)]
        with grpc.insecure_channel(target, options=options) as channel:
            call = channel.unary_unary(TOKENIZE, request_serializer=None, response_deserializer=None)
            try:
                call(payload, metadata=[("x-api-key", api_keys[i % len(api_keys)])], timeout=120)
            except grpc.RpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

    with ThreadPoolExecutor(max_workers=CALLS) as pool:
        return list(pool.map(one, range(CALLS)))


def test_bursts_of_large_calls_stay_bounded_and_memory_is_given_back(
    openbao: OpenBaoServer, vault_token: str, tmp_path: Path,
) -> None:
    database_url = f"sqlite:///{tmp_path / 'pdv.db'}"  # memory does not depend on the database
    migrate_url(database_url)
    api_key = "pdvk_" + secrets.token_urlsafe(24)
    target = f"127.0.0.1:{free_loopback_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PDV_", "MALLOC_"))}
    env.update({
        "PDV_LISTEN": target, "PDV_DATABASE_URL": database_url, "PDV_VAULT_ADDR": openbao.addr,
        "PDV_VAULT_TOKEN": vault_token, "PDV_DEV_POLICY": "true",
        "PDV_API_KEYS": json.dumps([{"principal": "intake-311", "sha256": hash_api_key(api_key)}]),
    })
    server = subprocess.Popen([sys.executable, "-m", "vault.cli.main", "serve"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(target, 60, alive=lambda: server.poll() is None)
        idle = memory(server.pid)["VmRSS"]

        # 60 MB calls, half of them authenticated: refused as they arrive.
        huge = b"\x0a" + b"\xff" * (60 * MiB)
        codes = burst(target, huge, [api_key, "pdvk_wrong"])
        assert set(codes[0::2]) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        # gRPC may refuse the size before the interceptor refuses the key: either is a refusal.
        assert set(codes[1::2]) <= {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAUTHENTICATED}

        # Calls just under the limit, authenticated, that cannot be decoded: each is read.
        near_limit = b"\x0a\xff\xff\xff\xff\x0f" + b"\x01" * (MAX_MESSAGE - 1024)
        assert set(burst(target, near_limit, [api_key])) == {grpc.StatusCode.INVALID_ARGUMENT}
        # And the same without credentials: never read.
        assert set(burst(target, near_limit, ["pdvk_wrong"])) == {grpc.StatusCode.UNAUTHENTICATED}

        peak = memory(server.pid)["VmHWM"]
        assert peak - idle < PEAK_BOUND, f"peak {peak // MiB} MiB from {idle // MiB} MiB idle"
        # The server trims within ~0.1 s of the last call; wait for that (up to 30 s on a busy machine).
        deadline = time.monotonic() + 30
        while (kept := memory(server.pid)["VmRSS"]) - idle >= AFTER_BOUND and time.monotonic() < deadline:
            time.sleep(0.1)
        assert kept - idle < AFTER_BOUND, f"kept {kept // MiB} MiB from {idle // MiB} MiB idle"
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
