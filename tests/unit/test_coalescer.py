"""Leader/follower batching: what concurrent callers of a Coalescer get back."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from vault.services.coalescer import Coalescer, take_up_to


def test_concurrent_items_share_batches_and_each_caller_gets_its_own_result() -> None:
    batches: list[list[int]] = []
    release = threading.Event()

    def execute(items: list[int]) -> list[int]:
        if not batches:
            release.wait(5)  # hold the first batch so the others queue behind it
        batches.append(items)
        return [i * 10 for i in items]

    coalescer: Coalescer[int, int] = Coalescer(execute, take_up_to(100))
    with ThreadPoolExecutor(max_workers=20) as pool:
        first = pool.submit(coalescer.run, 0)
        while not coalescer._leading:  # noqa: SLF001 - wait until the first batch is running
            time.sleep(0.001)
        rest = [pool.submit(coalescer.run, i) for i in range(1, 20)]
        while len(coalescer._queue) < 19:  # noqa: SLF001
            time.sleep(0.001)
        release.set()
        assert first.result() == 0 and [f.result() for f in rest] == [i * 10 for i in range(1, 20)]
    assert batches[0] == [0] and sorted(batches[1]) == list(range(1, 20)) and len(batches) == 2


def test_take_bounds_each_batch_and_a_failed_batch_fails_only_its_callers() -> None:
    release = threading.Event()
    seen: list[list[str]] = []

    def execute(items: list[str]) -> list[str]:
        if not seen:
            release.wait(5)
        seen.append(items)
        if "bad" in items:
            raise RuntimeError("batch failed")
        return [s.upper() for s in items]

    coalescer: Coalescer[str, str] = Coalescer(execute, take_up_to(2))
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = pool.submit(coalescer.run, "a")
        while not coalescer._leading:  # noqa: SLF001
            time.sleep(0.001)
        futures = {}
        for item in ("b", "bad", "c", "d"):
            futures[item] = pool.submit(coalescer.run, item)
            while item not in [u.item for u in coalescer._queue]:  # noqa: SLF001 - keep the queue order
                time.sleep(0.001)
        release.set()
        assert first.result() == "A"
        with pytest.raises(RuntimeError, match="batch failed"):
            futures["b"].result()
        with pytest.raises(RuntimeError, match="batch failed"):
            futures["bad"].result()
        assert futures["c"].result() == "C" and futures["d"].result() == "D"
    assert seen == [["a"], ["b", "bad"], ["c", "d"]]
