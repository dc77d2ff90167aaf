"""The item budget (vault/services/runtime/budget.py): calls wait for their share, first come
first served, within a bounded wait; one larger than the budget runs alone; no deadlock.

Synchronisation is by events and polls of the budget's own state, never by sleeping."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest

from vault.errors import Overloaded
from vault.services.runtime.budget import ItemBudget

JOIN = 60.0  # seconds: generous, only reached if something is wrong


def poll(condition: Callable[[], bool], seconds: float = JOIN) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


class Holder(threading.Thread):
    """Takes a share and keeps it until released."""

    def __init__(self, budget: ItemBudget, items: int, timeout: float | None = None) -> None:
        super().__init__(daemon=True)
        self.budget, self.items, self.timeout = budget, items, timeout
        self.entered, self.release = threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.budget.share("Tokenize", "intake-311", self.items, self.timeout):
                self.entered.set()
                self.release.wait(JOIN)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc

    def finish(self) -> None:
        self.release.set()
        self.join(JOIN)
        assert not self.is_alive()


def test_a_call_that_does_not_fit_waits_for_its_share() -> None:
    budget = ItemBudget(10, JOIN)
    first = Holder(budget, 6)
    first.start()
    assert first.entered.wait(JOIN)
    second = Holder(budget, 6)
    second.start()
    poll(lambda: budget.waiting == 1)
    assert not second.entered.is_set() and budget.in_flight == 6
    first.finish()
    assert second.entered.wait(JOIN)
    assert budget.in_flight == 6
    second.finish()
    assert budget.in_flight == 0 and first.error is None and second.error is None


def test_the_wait_is_bounded_refused_logged_and_nothing_taken() -> None:
    refused: list[tuple[str, str, int]] = []
    budget = ItemBudget(10, 0.2, lambda *args: refused.append(args))
    holder = Holder(budget, 10)
    holder.start()
    assert holder.entered.wait(JOIN)
    with pytest.raises(Overloaded, match="retry"):
        with budget.share("Detokenize", "intake-311", 3):
            pass
    assert refused == [("Detokenize", "intake-311", 3)]
    assert budget.in_flight == 10 and budget.waiting == 0
    # The call's own deadline, if sooner, bounds the wait too.
    with pytest.raises(Overloaded):
        with budget.share("Lookup", "intake-311", 1, timeout=0.0):
            pass
    holder.finish()
    with budget.share("Detokenize", "intake-311", 3):
        assert budget.in_flight == 3


def test_a_call_larger_than_the_budget_runs_alone() -> None:
    budget = ItemBudget(10, JOIN)
    small = Holder(budget, 1)
    small.start()
    assert small.entered.wait(JOIN)
    big = Holder(budget, 50)
    big.start()
    poll(lambda: budget.waiting == 1)
    assert not big.entered.is_set()
    small.finish()
    assert big.entered.wait(JOIN)
    assert budget.in_flight == 10  # the whole budget, not more
    other = Holder(budget, 1)
    other.start()
    poll(lambda: budget.waiting == 1)
    assert not other.entered.is_set()
    big.finish()
    assert other.entered.wait(JOIN)
    other.finish()


def test_first_come_first_served_so_a_large_call_is_not_starved() -> None:
    budget = ItemBudget(10, JOIN)
    holder = Holder(budget, 5)
    holder.start()
    assert holder.entered.wait(JOIN)
    big = Holder(budget, 10)
    big.start()
    poll(lambda: budget.waiting == 1)
    small = Holder(budget, 1)  # would fit now, but came after the large one
    small.start()
    poll(lambda: budget.waiting == 2)
    assert not small.entered.is_set()
    holder.finish()
    assert big.entered.wait(JOIN)
    assert not small.entered.is_set()
    big.finish()
    assert small.entered.wait(JOIN)
    small.finish()


def test_many_callers_never_exceed_the_budget_nor_deadlock() -> None:
    budget = ItemBudget(100, JOIN)
    lock, seen, done = threading.Lock(), [0], []

    def caller(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(50):
            items = rng.choice([1, 7, 40, 100, 250])  # some larger than the budget
            with budget.share("Tokenize", "p", items):
                with lock:
                    seen[0] = max(seen[0], budget.in_flight)
        done.append(seed)

    threads = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN)
    assert sorted(done) == list(range(32)), "a caller did not finish"
    assert 0 < seen[0] <= 100 and budget.in_flight == 0 and budget.waiting == 0
