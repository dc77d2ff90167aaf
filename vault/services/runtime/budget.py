"""The item budget: a process-wide cap on the items (record fields, tokens, queries,
subjects) of the calls being worked on at once.

Bytes are already bounded (max_message_bytes, one message per worker thread), but a call's
memory grows with its item count, not its bytes: ten thousand short fields become ten
thousand Python objects, results, problems and access-log rows. Sixteen workers each on a
full batch peaked at ~800 MB. A call therefore takes its item count from the budget before
its work starts and gives it back when done; a call that does not fit waits.

- First come, first served: a waiting call is admitted only when every call that began
  waiting before it has been, so a stream of small calls cannot starve a large one.
- A call larger than the whole budget still runs, alone: it waits until nothing else is in
  flight and takes the whole budget (max_batch_items may be set above the budget).
- The wait is bounded (the setting, or the call's own deadline if sooner); past it the call
  is refused with Overloaded (RESOURCE_EXHAUSTED, retryable) and `on_refused` is told, so
  the refusal is written to the access log like any other. Nothing is held while waiting,
  so waiting cannot deadlock: a call only ever holds its own share, taken once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from vault.errors import Overloaded

REFUSAL_REASON = "over_items_in_flight"  # the access-log row's field


class ItemBudget:
    """At most `capacity` items in flight across the process (see the module docstring)."""

    def __init__(self, capacity: int, wait_seconds: float,
                 on_refused: Callable[[str, str, int], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 on_share: Callable[[str, int], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity, self.wait_seconds = capacity, wait_seconds
        self._on_refused = on_refused  # (method, principal, items)
        self._on_share = on_share  # (method, items): every call's item count, for the metrics
        self._clock = clock
        self._in_flight = 0
        self._queue: deque[object] = deque()  # waiting calls, oldest first
        self._changed = threading.Condition()

    @property
    def in_flight(self) -> int:
        """Items taken now (for tests and metrics)."""
        with self._changed:
            return self._in_flight

    @property
    def waiting(self) -> int:
        """Calls waiting for their share now."""
        with self._changed:
            return len(self._queue)

    @contextmanager
    def share(self, method: str, principal: str, items: int, timeout: float | None = None) -> Iterator[None]:
        """Hold `items` of the budget while the block runs.

        Args:
            method: the RPC, for the refusal's log row.
            principal: the caller, for the refusal's log row.
            items: the call's item count (at least one is taken; more than the capacity takes all of it).
            timeout: the call's remaining deadline, if it has one; the wait is the shorter of it and wait_seconds.

        Raises:
            Overloaded: the share did not come free in time; nothing was taken.
        """
        if self._on_share is not None:
            self._on_share(method, items)
        taken = self._take(method, principal, min(max(items, 1), self.capacity), timeout)
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= taken
                self._changed.notify_all()

    def _take(self, method: str, principal: str, want: int, timeout: float | None) -> int:
        wait = self.wait_seconds if timeout is None else max(0.0, min(self.wait_seconds, timeout))
        deadline = self._clock() + wait
        me = object()
        with self._changed:
            self._queue.append(me)
            try:
                while self._queue[0] is not me or self._in_flight + want > self.capacity:
                    left = deadline - self._clock()
                    if left <= 0:
                        break
                    self._changed.wait(left)
                else:
                    self._in_flight += want
                    return want
            finally:
                self._queue.remove(me)
                self._changed.notify_all()  # the next in line may fit now, or be first now
        if self._on_refused is not None:
            self._on_refused(method, principal, want)
        raise Overloaded(f"{method}: the server is busy with other large calls (more than {self.capacity} items "
                         f"in flight); retry shortly, or send smaller batches")
