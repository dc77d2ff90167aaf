"""Leader/follower batching: concurrent callers' items are carried out together.

Each caller hands in an item; whoever finds no batch running leads: it takes every item
waiting at that moment (as many as `take` admits), carries them out in one `execute`
call, wakes their callers and goes on until its own item is done, then hands over to a
waiting caller. The others sleep on a condition rather than queueing on a lock, so one
batch wakes all of its callers at once.
A failed batch fails every item in it with the same error, so `execute` must not raise
for one item's sake.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

I = TypeVar("I")
R = TypeVar("R")


class _Unit(Generic[I, R]):
    __slots__ = ("item", "result", "error", "done")

    def __init__(self, item: I) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done = False


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
        self._changed = threading.Condition()

    def run(self, item: I) -> R:
        """Carry out `item` in some batch; its result, or the error that failed the batch."""
        unit: _Unit[I, R] = _Unit(item)
        with self._changed:
            self._queue.append(unit)
            while not unit.done and self._leading:
                self._changed.wait()
            lead = not unit.done
            if lead:
                self._leading = True
        if lead:
            self._lead(unit)
        if unit.error is not None:
            raise unit.error
        return unit.result  # type: ignore[return-value]

    def _lead(self, own: _Unit[I, R]) -> None:
        """Carry out batches until our own item is done, then hand leadership to a waiter (so
        no caller leads for ever under steady load)."""
        try:
            while not own.done:
                with self._changed:
                    waiting = [u.item for u in self._queue]
                    try:
                        n = max(1, min(len(waiting), self._take(waiting)))
                    except Exception:  # noqa: BLE001 - a bad `take` must not stall the queue
                        n = 1
                    batch, self._queue = self._queue[:n], self._queue[n:]
                self._carry_out(batch)
                with self._changed:
                    self._changed.notify_all()
        finally:
            with self._changed:
                self._leading = False
                self._changed.notify_all()

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
