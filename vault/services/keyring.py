"""Data keys: made locally, wrapped by Vault in batches, unwrapped on demand into a bounded cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping

from cachetools import TTLCache

from vault.crypto.aead import DataKey, new_data_key
from vault.domain import WrappedKey
from vault.keys.provider import KeyProvider
from vault.secret import SecretBytes

KeyId = tuple[str, int]  # (subject_id, key version)


class KeyRing:
    """The one place DEKs are made, wrapped, unwrapped and cached.

    The cache is an LRU with a TTL and a size bound; it is only ever consulted for a
    key whose database row the caller has just read, so a shredded key is never used.
    """

    def __init__(
        self, provider: KeyProvider, cache_size: int = 100_000, ttl_seconds: float = 300.0, spare_keys: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self._cache: TTLCache[KeyId, DataKey] = TTLCache(maxsize=cache_size, ttl=ttl_seconds)
        self._lock = threading.Lock()
        self._refilling = threading.Lock()
        # Fresh DEKs wrapped ahead of need, so a one-record tokenize does not pay a Vault
        # round trip: whenever Vault is called anyway, it wraps this many extra.
        self._spare_target = spare_keys
        # Spares expire with the cache TTL: after a KEK rotation, a spare wrapped under the old
        # version would add rows that `pdv keys rewrap` has to chase and that block the trim.
        self._spare_max_age = ttl_seconds
        self._clock = clock
        self._spares: list[tuple[SecretBytes, WrappedKey, float]] = []  # (DEK, wrapped, made at)
        # Read by the metrics at scrape time; counted under _lock, which cached() holds anyway.
        self.hits = 0
        self.misses = 0

    @property
    def cached_keys(self) -> int:
        """Unwrapped DEKs in the cache now (expired ones may count until the cache next touches them)."""
        return len(self._cache)

    @property
    def spare_keys(self) -> int:
        """Fresh wrapped DEKs ready now."""
        return len(self._spares)

    @property
    def spare_target(self) -> int:
        return self._spare_target

    def new_keys(self, count: int) -> list[tuple[SecretBytes, WrappedKey]]:
        """`count` fresh, never-used DEKs and their wrapped forms (at most one batched Vault call)."""
        taken = self._take_spares(count)
        if len(taken) == count:
            return taken
        if count - len(taken) >= self._spare_target:
            # A batch bigger than the spares would be wrapped anew anyway: its own Vault call,
            # side by side with any other caller's.
            return taken + self._wrap(count - len(taken))
        # One refill at a time: small callers that ran short together would otherwise each
        # wrap a full set of spares, and all but one set would be thrown away. A caller that
        # waited here takes what the refill before it made.
        with self._refilling:
            taken += self._take_spares(count - len(taken))
            if len(taken) < count:
                taken += self._wrap(count - len(taken))
        return taken

    def _wrap(self, missing: int) -> list[tuple[SecretBytes, WrappedKey]]:
        """`missing` fresh DEKs, wrapped in one Vault call together with a new set of spares."""
        secrets = [new_data_key() for _ in range(missing + self._spare_target)]
        made = list(zip(secrets, self._provider.wrap_keys(secrets)))
        now = self._clock()
        with self._lock:
            self._spares = (self._spares + [(s, w, now) for s, w in made[missing:]])[: self._spare_target]
        return made[:missing]

    def _take_spares(self, count: int) -> list[tuple[SecretBytes, WrappedKey]]:
        now = self._clock()
        with self._lock:
            if self._spares and now - self._spares[0][2] >= self._spare_max_age:  # oldest first
                self._spares = [s for s in self._spares if now - s[2] < self._spare_max_age]
            taken = [(s[0], s[1]) for s in self._spares[:count]]
            self._spares = self._spares[count:]
        return taken

    def remember(self, key_id: KeyId, secret: SecretBytes) -> DataKey:
        data_key = DataKey(secret, key_id[1])
        with self._lock:
            self._cache[key_id] = data_key
        return data_key

    def cached(self, wanted: Iterable[KeyId], count: bool = True) -> tuple[dict[KeyId, DataKey], list[KeyId]]:
        """The DEKs already unwrapped, and the ids of those that are not (no Vault call).

        `count`: add them to the hit and miss counts (False for a second look at keys a caller
        has already been counted for, so a cold read counts one miss, not a miss and a hit)."""
        found: dict[KeyId, DataKey] = {}
        missing: list[KeyId] = []
        with self._lock:
            for key_id in wanted:
                data_key = self._cache.get(key_id)
                if data_key is None:
                    missing.append(key_id)
                else:
                    found[key_id] = data_key
            if count:
                self.hits += len(found)
                self.misses += len(missing)
        return found, missing

    def data_keys(self, wanted: Mapping[KeyId, str], count: bool = True) -> dict[KeyId, DataKey]:
        """The DEKs for `wanted` (key id → wrapped text just read from the database); `count` as for cached()."""
        found, missing = self.cached(wanted, count)
        if missing:
            secrets = self._provider.unwrap_keys([WrappedKey(wanted[k]) for k in missing])
            for key_id, secret in zip(missing, secrets):
                found[key_id] = self.remember(key_id, secret)
        return found

    def evict(self, key_ids: Iterable[KeyId]) -> None:
        """Forget these DEKs now (a shred). Reads would not use them anyway: they need the
        key's database row, which the shred deleted."""
        with self._lock:
            for key_id in key_ids:
                self._cache.pop(key_id, None)

    def clear(self) -> None:
        """Forget every unwrapped key: the cache and the spare fresh keys."""
        with self._lock:
            self._cache.clear()
            self._spares.clear()
