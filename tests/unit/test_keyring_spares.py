"""Spare pre-wrapped DEKs never outlive a KEK rotation for long (so a rewrap stays finished)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from vault.domain import WrappedKey
from vault.secret import SecretBytes
from vault.services.keyring import KeyRing


class FakeKek:
    def __init__(self) -> None:
        self.version, self.calls = 1, 0

    def wrap_keys(self, keys: Sequence[SecretBytes]) -> list[WrappedKey]:
        self.calls += 1
        return [WrappedKey(f"vault:v{self.version}:{i}") for i in range(len(keys))]

    def unwrap_keys(self, wrapped: Sequence[WrappedKey]) -> list[SecretBytes]:
        raise AssertionError("not used")

    def check(self) -> None:
        pass


def test_spares_expire_with_the_cache_ttl() -> None:
    kek, now = FakeKek(), [0.0]
    ring = KeyRing(kek, ttl_seconds=60, spare_keys=4, clock=lambda: now[0])
    ring.new_keys(1)  # one Vault call: 1 used, 4 spares under v1
    kek.version = 2  # `pdv keys rotate`
    assert [w.kek_version for _, w in ring.new_keys(1)] == [1] and kek.calls == 1  # a spare, still fresh
    now[0] = 61.0
    assert [w.kek_version for _, w in ring.new_keys(1)] == [2] and kek.calls == 2  # expired: wrapped anew



class SlowKek(FakeKek):
    """Vault taking a while to answer, so that callers run short of spares together."""

    def __init__(self) -> None:
        super().__init__()
        self.wrapped = 0

    def wrap_keys(self, keys: Sequence[SecretBytes]) -> list[WrappedKey]:
        time.sleep(0.05)
        self.wrapped += len(keys)
        return super().wrap_keys(keys)


def test_callers_short_of_spares_together_share_one_refill() -> None:
    kek = SlowKek()
    ring = KeyRing(kek, spare_keys=64)
    start = threading.Barrier(16)

    def one_key(_: int) -> list[tuple[SecretBytes, WrappedKey]]:
        start.wait()
        return ring.new_keys(1)

    with ThreadPoolExecutor(16) as pool:
        got = [key for keys in pool.map(one_key, range(16)) for key in keys]
    assert len(got) == 16 and len({secret.reveal() for secret, _ in got}) == 16  # each DEK handed out once
    assert kek.calls == 1 and kek.wrapped == 1 + 64  # one Vault call; no spare set made only to be dropped



class MeetingKek(FakeKek):
    """Each wrap waits for a second one to be under way: calls made one after the other never meet."""

    def __init__(self) -> None:
        super().__init__()
        self.meeting = threading.Barrier(2, timeout=5)

    def wrap_keys(self, keys: Sequence[SecretBytes]) -> list[WrappedKey]:
        self.meeting.wait()  # BrokenBarrierError if the other caller is queued behind this one
        return super().wrap_keys(keys)


def test_batches_bigger_than_the_spares_call_vault_side_by_side() -> None:
    kek = MeetingKek()
    ring = KeyRing(kek, spare_keys=8)
    with ThreadPoolExecutor(2) as pool:
        batches = list(pool.map(lambda _: ring.new_keys(100), range(2)))
    assert [len(b) for b in batches] == [100, 100] and kek.calls == 2
