"""Per-principal token buckets: how many detokenize items and lookup queries a caller may
make per second, with a burst allowance. In-process (each replica counts on its own),
which bounds a token-guessing caller's rate without a shared store on the hot path."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from vault.errors import RateLimited


class RateLimiter:
    def __init__(self, per_second: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second, self.burst, self._clock = per_second, max(burst, 1.0), clock
        self._buckets: dict[str, tuple[float, float]] = {}  # principal -> (tokens, at)
        self._lock = threading.Lock()

    def spend(self, principal: str, items: int) -> None:
        """Take `items` from the principal's bucket, or raise RateLimited and take nothing.

        A batch larger than the burst can never pass, so the burst bounds batch size too;
        the settings check keeps rate_limit_burst >= max_batch_items when limits are on.
        """
        if self.per_second <= 0:
            return
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(principal, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.per_second)
            if tokens < items:
                self._buckets[principal] = (tokens, now)
                raise RateLimited("rate limit exceeded for this principal; slow down and retry")
            self._buckets[principal] = (tokens - items, now)
