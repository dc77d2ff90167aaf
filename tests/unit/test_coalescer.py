"""Leader/follower batching: what concurrent callers of a Coalescer get back."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from vault.errors import StoreUnavailable
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


def test_a_leader_hands_over_once_its_own_item_is_done() -> None:
    """Under steady load the caller who led first gets its answer after its own batch, not
    when the queue happens to run dry."""
    first_done, stop, gate = threading.Event(), threading.Event(), threading.Event()

    def execute(items: list[int]) -> list[int]:
        if items == [0]:
            gate.wait(5)  # the first caller leads; the load queues up behind it
        time.sleep(0.002)
        return items

    coalescer: Coalescer[int, int] = Coalescer(execute, take_up_to(4))

    def steady() -> None:
        while not stop.is_set():
            coalescer.run(1)

    with ThreadPoolExecutor(max_workers=9) as pool:
        first = pool.submit(lambda: (coalescer.run(0), first_done.set()))
        while not coalescer._leading:  # noqa: SLF001
            time.sleep(0.001)
        load = [pool.submit(steady) for _ in range(8)]
        while len(coalescer._queue) < 8:  # noqa: SLF001
            time.sleep(0.001)
        gate.set()
        handed_over = first_done.wait(2)
        stop.set()
        first.result()
        for f in load:
            f.result()
    assert handed_over, "the first leader kept leading while the queue never ran dry"


def test_an_execute_returning_the_wrong_count_fails_its_batch_and_the_queue_goes_on() -> None:
    calls = []

    def execute(items: list[str]) -> list[str]:
        calls.append(items)
        return [] if items == ["broken"] else items

    coalescer: Coalescer[str, str] = Coalescer(execute, take_up_to(1))
    with pytest.raises(RuntimeError, match="1 items came back with 0 results"):
        coalescer.run("broken")
    assert coalescer.run("fine") == "fine"


def test_callers_of_a_failed_batch_each_raise_their_own_copy_of_its_error() -> None:
    release = threading.Event()

    def execute(items: list[str]) -> list[str]:
        if items == ["first"]:
            release.wait(5)
            return items
        raise StoreUnavailable("database unavailable")

    coalescer: Coalescer[str, str] = Coalescer(execute, take_up_to(10))
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(coalescer.run, "first")
        while not coalescer._leading:  # noqa: SLF001
            time.sleep(0.001)
        failing = [pool.submit(coalescer.run, f"item{i}") for i in range(3)]
        while len(coalescer._queue) < 3:  # noqa: SLF001
            time.sleep(0.001)
        release.set()
        assert first.result() == "first"
        errors = [f.exception() for f in failing]
    assert all(isinstance(e, StoreUnavailable) and str(e) == "database unavailable" for e in errors)
    assert len({id(e) for e in errors}) == 3  # no traceback shared between threads
