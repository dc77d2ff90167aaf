"""Group commit: concurrent small writes share one transaction and one commit.

Each caller hands in a unit of work; whoever takes the writer's turn first runs every
unit waiting at that moment in a single transaction, then wakes the others. Nothing
is acknowledged before its transaction commits, and a failed transaction fails every
unit in it with the same error (units are built not to raise on their own).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from vault.storage.store import Store, Tx

T = TypeVar("T")


class _Unit(Generic[T]):
    __slots__ = ("work", "result", "error", "done")

    def __init__(self, work: Callable[[Tx], T]) -> None:
        self.work = work
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommitter:
    def __init__(self, store: Store, max_units: int = 512) -> None:
        self._store = store
        self._max_units = max_units
        self._queue: list[_Unit] = []
        self._leading = False  # someone is committing; newcomers queue behind them
        self._changed = threading.Condition()

    def run(self, work: Callable[[Tx], T]) -> T:
        """Run `work` inside a committed write transaction (shared with concurrent callers).

        Raises whatever the transaction raised (StoreUnavailable, Conflict ...).
        """
        unit: _Unit[T] = _Unit(work)
        with self._changed:
            self._queue.append(unit)
            # Waiters sleep on the condition rather than queueing on a lock, so one commit
            # wakes all of its units at once instead of handing a lock down a convoy.
            while not unit.done and self._leading:
                self._changed.wait()
            lead = not unit.done
            if lead:
                self._leading = True
        if lead:
            self._lead()
        if unit.error is not None:
            raise unit.error
        return unit.result  # type: ignore[return-value]

    def _lead(self) -> None:
        """Commit batches until the queue is empty, then hand leadership back."""
        while True:
            with self._changed:
                batch, self._queue = self._queue[: self._max_units], self._queue[self._max_units :]
                if not batch:
                    self._leading = False
                    self._changed.notify_all()
                    return
            self._commit(batch)
            with self._changed:
                self._changed.notify_all()

    def _commit(self, batch: list[_Unit]) -> None:
        try:
            with self._store.transaction() as tx:
                for unit in batch:
                    unit.result = unit.work(tx)
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
            for unit in batch:
                unit.error = exc
        for unit in batch:
            unit.done = True
