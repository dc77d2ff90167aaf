"""Leader/follower batching: concurrent callers' items are carried out together.

Each caller hands in an item; whoever finds no batch running leads: it takes every item
waiting at that moment (as many as `take` admits), carries them out in one `execute`
call, wakes exactly the callers of that batch and goes on until its own item is done,
then hands the lead to the longest-waiting caller. The others sleep on their own wake-up
lock, so a batch wakes its callers and nobody else.
A failed batch fails every item in it with the same error, so `execute` must not raise
for one item's sake; each caller raises its own copy of that error.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

I = TypeVar("I")
R = TypeVar("R")


class _Unit(Generic[I, R]):
    __slots__ = ("item", "result", "error", "done", "lead", "wake")

    def __init__(self, item: I) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done = False
        self.lead = False  # handed the lead while still waiting
        self.wake = threading.Lock()
        self.wake.acquire()  # released once: the item is done, or the caller is to lead


def take_up_to(limit: int) -> Callable[[Sequence], int]:
    """A `take` that admits the first `limit` waiting items."""
    return lambda waiting: min(limit, len(waiting))


class Coalescer(Generic[I, R]):
    def __init__(self, execute: Callable[[list[I]], list[R]], take: Callable[[Sequence[I]], int]) -> None:
        """`execute(items)` returns one result per item, in order; `take(waiting)` says how
        many of the waiting items (a prefix, at least one) the next batch carries."""
        self._execute, self._take = execute, take
        self._queue: list[_Unit[I, R]] = []
        self._leading = False
        self._mutex = threading.Lock()

    def run(self, item: I) -> R:
        """Carry out `item` in some batch; its result, or the error that failed the batch."""
        unit: _Unit[I, R] = _Unit(item)
        with self._mutex:
            self._queue.append(unit)
            lead = not self._leading
            self._leading = True
        if not lead:
            unit.wake.acquire()
            lead = unit.lead
        if lead:
            self._lead(unit)
            if unit.error is not None:
                raise unit.error
        elif unit.error is not None:
            raise _own_copy(unit.error)
        return unit.result  # type: ignore[return-value]

    def _lead(self, own: _Unit[I, R]) -> None:
        """Carry out batches until our own item is done, then hand the lead to a waiter (so
        no caller leads for ever under steady load)."""
        try:
            while not own.done:
                with self._mutex:
                    waiting = [u.item for u in self._queue]
                    try:
                        n = max(1, min(len(waiting), self._take(waiting)))
                    except Exception:  # noqa: BLE001 - a bad `take` must not stall the queue
                        n = 1
                    batch, self._queue = self._queue[:n], self._queue[n:]
                self._carry_out(batch)
                for unit in batch:
                    if unit is not own:
                        unit.wake.release()
        finally:
            with self._mutex:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.wake.release()
                else:
                    self._leading = False

    def _carry_out(self, batch: list[_Unit[I, R]]) -> None:
        try:
            results = self._execute([u.item for u in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} items came back with {len(results)} results")
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
            for unit in batch:
                unit.error = exc
        else:
            for unit, result in zip(batch, results):
                unit.result = result
        for unit in batch:
            unit.done = True


def _own_copy(error: BaseException) -> BaseException:
    """A copy of a batch's error for one caller, so that callers raising it in their own
    threads do not add their tracebacks to one shared object."""
    try:
        mine = copy.copy(error)
    except Exception:  # noqa: BLE001 - an error that cannot be copied is raised as it is
        return error
    mine.__cause__, mine.__context__ = error.__cause__, error.__context__
    mine.__suppress_context__ = error.__suppress_context__
    return mine.with_traceback(error.__traceback__)
