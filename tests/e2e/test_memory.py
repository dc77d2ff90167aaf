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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from pdv.v1 import token_pb2 as pb
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
DETOKENIZE = "/pdv.v1.TokenService/Detokenize"
ITEMS = 10_000  # the default max_batch_items: every call below is a full batch
BUDGET = 20_000  # the default max_items_in_flight: two full batches at once
# Many-item calls: memory follows items, not bytes. Measured on 2 cores, growth over idle:
# with no item budget the burst below peaked at +670 MiB and kept +508 MiB; with the budget
# (two full batches at once) and pdv serve's allocator settings, peak +190-230, kept +55-66.
MANY_PEAK_BOUND = 400 * MiB
MANY_AFTER_BOUND = 128 * MiB
CALL_TIMEOUT = 600  # seconds: a bound, not a timing assertion (the calls queue for the budget)


@dataclass
class Served:
    process: subprocess.Popen
    target: str
    api_key: str

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def pdv_serve(openbao: OpenBaoServer, vault_token: str, tmp_path: Path, environment: dict[str, str] | None = None,
              **settings: str) -> Iterator[Served]:
    """A real `pdv serve` process on SQLite (memory does not depend on the database) with one
    API key, PDV_<NAME> variables from `settings`; stopped with SIGTERM, which must exit 0."""
    database_url = f"sqlite:///{tmp_path / 'pdv.db'}"
    migrate_url(database_url)
    api_key = "pdvk_" + secrets.token_urlsafe(24)
    target = f"127.0.0.1:{free_loopback_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PDV_", "MALLOC_"))}
    env.update({
        "PDV_LISTEN": target, "PDV_DATABASE_URL": database_url, "PDV_VAULT_ADDR": openbao.addr,
        "PDV_VAULT_TOKEN": vault_token, "PDV_DEV_POLICY": "true",
        "PDV_API_KEYS": json.dumps([{"principal": "intake-311", "sha256": hash_api_key(api_key)}]),
        **{f"PDV_{name.upper()}": value for name, value in settings.items()}, **(environment or {}),
    })
    server = subprocess.Popen([sys.executable, "-m", "vault.cli.main", "serve"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(target, 60, alive=lambda: server.poll() is None)
        yield Served(server, target, api_key)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=120) == 0


def settle(pid: int, idle: int, bound: int, seconds: float = 60) -> int:
    """RSS once it is back within `bound` of idle, or when `seconds` are spent: the server
    trims shortly after large calls end; on a busy machine that can take a while."""
    deadline = time.monotonic() + seconds
    while (kept := memory(pid)["VmRSS"]) - idle >= bound and time.monotonic() < deadline:
        time.sleep(0.1)
    return kept


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
    with pdv_serve(openbao, vault_token, tmp_path) as served:
        target, api_key = served.target, served.api_key
        idle = memory(served.pid)["VmRSS"]

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

        peak = memory(served.pid)["VmHWM"]
        assert peak - idle < PEAK_BOUND, f"peak {peak // MiB} MiB from {idle // MiB} MiB idle"
        kept = settle(served.pid, idle, AFTER_BOUND)
        assert kept - idle < AFTER_BOUND, f"kept {kept // MiB} MiB from {idle // MiB} MiB idle"


def many_item_calls(served: Served, tokens: list[str], subject_ids: list[str]) -> list[tuple[str, bytes]]:
    """32 near-limit calls of ITEMS items: valid tokenizes (appending to known subjects, so no
    new keys to cache), invalid ones (every value fails its validator: 10,000 problems), and
    detokenizes of a full batch of tokens. Requests are built here, serialized, to keep the
    test process's own work out of the server's way."""
    def tokenize(valid: bool, n: int) -> bytes:
        value = (lambda i: f"{i} {n} " + "MAIN STREET " * 23) if valid else (lambda i: "-" * 290)
        return pb.TokenizeRequest(
            request_id=f"burst-{n}", purpose="benefits_eligibility", source="311", mode=pb.BATCH_MODE_PARTIAL,
            records=[pb.Record(subject_id=subject_ids[i] if valid else "", fields={"street_address": value(i)})
                     for i in range(ITEMS)],
        ).SerializeToString()

    detokenize = pb.DetokenizeRequest(purpose="benefits_eligibility",
                                      items=[pb.DetokenizeItem(token=t) for t in tokens]).SerializeToString()
    calls = []
    for n in range(CALLS):
        kind = n % 4
        calls.append((TOKENIZE, tokenize(True, n)) if kind == 0 else (TOKENIZE, tokenize(False, n)) if kind in (1, 2)
                     else (DETOKENIZE, detokenize))
    return calls


def raw_burst(target: str, api_key: str, calls: list[tuple[str, bytes]]) -> list[tuple[grpc.StatusCode, bytes]]:
    """All `calls` at once, one connection each; (status, response bytes) for each."""
    def one(call: tuple[str, bytes]) -> tuple[grpc.StatusCode, bytes]:
        with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            method = channel.unary_unary(call[0], request_serializer=None, response_deserializer=None)
            try:
                return grpc.StatusCode.OK, method(call[1], metadata=[("x-api-key", api_key)], timeout=CALL_TIMEOUT)
            except grpc.RpcError as exc:
                return exc.code(), b""

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


def seed(served: Served) -> tuple[list[str], list[str]]:
    """One full batch stored before the burst: its tokens and subjects."""
    request = pb.TokenizeRequest(request_id="seed", purpose="benefits_eligibility", source="311", records=[
        pb.Record(fields={"street_address": f"{i} SEED " + "MAIN STREET " * 23}) for i in range(ITEMS)])
    ((code, raw),) = raw_burst(served.target, served.api_key, [(TOKENIZE, request.SerializeToString())])
    assert code is grpc.StatusCode.OK
    answer = pb.TokenizeResponse.FromString(raw)
    assert not answer.errors
    return [r.tokens["street_address"] for r in answer.results], [r.subject_id for r in answer.results]


def check_answers(calls: list[tuple[str, bytes]], answers: list[tuple[grpc.StatusCode, bytes]]) -> None:
    codes = [code for code, _ in answers]
    assert codes == [grpc.StatusCode.OK] * len(calls), codes
    for (method, request), (_, raw) in zip(calls, answers):
        if method == DETOKENIZE:
            results = pb.DetokenizeResponse.FromString(raw).results
            assert len(results) == ITEMS and all(r.code == 0 and r.value for r in results)
            continue
        answer = pb.TokenizeResponse.FromString(raw)
        if pb.TokenizeRequest.FromString(request).records[0].subject_id:  # valid: appended
            assert len(answer.results) == ITEMS and not answer.errors
        else:  # invalid: refused item by item, nothing stored
            assert len(answer.errors) == ITEMS and not any(r.tokens for r in answer.results)


def measure_many_item_burst(served: Served) -> tuple[int, int, int]:
    """(idle RSS, peak RSS, RSS after settling) around one burst of many_item_calls."""
    tokens, subject_ids = seed(served)
    calls = many_item_calls(served, tokens, subject_ids)
    idle = settle(served.pid, 0, 0, seconds=1)  # after the seed: its keys are cached, as they stay
    answers = raw_burst(served.target, served.api_key, calls)
    peak = memory(served.pid)["VmHWM"]
    check_answers(calls, answers)
    del answers, calls
    return idle, peak, settle(served.pid, idle, MANY_AFTER_BOUND)


def test_bursts_of_many_item_calls_stay_bounded_by_the_item_budget_and_memory_is_given_back(
    openbao: OpenBaoServer, vault_token: str, tmp_path: Path,
) -> None:
    # The wait for a share is raised: on a busy 2-core machine 32 full batches two at a time
    # can take minutes, and the test is about memory, not about refusing.
    with pdv_serve(openbao, vault_token, tmp_path, items_wait_seconds=str(CALL_TIMEOUT)) as served:
        idle, peak, kept = measure_many_item_burst(served)
    assert peak - idle < MANY_PEAK_BOUND, f"peak {peak // MiB} MiB from {idle // MiB} MiB idle"
    assert kept - idle < MANY_AFTER_BOUND, f"kept {kept // MiB} MiB from {idle // MiB} MiB idle"
