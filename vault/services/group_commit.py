"""Group commit: concurrent small writes share one transaction and one commit.

Nothing is acknowledged before its transaction commits, and a failed transaction fails
every unit in it with the same error (units are built not to raise on their own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from vault.services.coalescer import Coalescer, take_up_to
from vault.storage.store import Store, Tx

T = TypeVar("T")


class GroupCommitter:
    def __init__(self, store: Store, max_units: int = 512, on_batch: Callable[[int], None] | None = None) -> None:
        self._store = store
        self._on_batch = on_batch  # told each transaction's unit count (metrics)
        self._units: Coalescer[Callable[[Tx], object], object] = Coalescer(self._commit, take_up_to(max_units))

    def run(self, work: Callable[[Tx], T]) -> T:
        """Run `work` inside a committed write transaction (shared with concurrent callers).

        Raises whatever the transaction raised (StoreUnavailable, Conflict ...).
        """
        return self._units.run(work)  # type: ignore[return-value]

    def _commit(self, works: list[Callable[[Tx], object]]) -> list[object]:
        if self._on_batch is not None:
            self._on_batch(len(works))
        with self._store.transaction() as tx:
            return [work(tx) for work in works]
