"""Sequential storage keys behind random tokens (migration 0013, vault/crypto/locators.py).

A random-kind token is the AES-256 block of its row's locator and a random check. Locators
come from blocks this server reserves in the database (`reserve`, one short transaction per
block), so the rows a server writes carry consecutive locators and each insert appends to
the locator index. The key is per token domain, HKDF from the Vault-wrapped index root
(IndexKeys.locator_key): a domain's tokens open only under its own key, so another domain's
token opens to a locator with no row of the caller's domain or a check that does not match.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from vault.crypto import tokens as tk
from vault.crypto.locators import LocatorCipher
from vault.services.index_keys import IndexKeys

# Locators a server reserves at a time: a tokenize of 1,000 five-field records takes 5,000.
BLOCK = 65_536


class SequentialTokens:
    def __init__(self, index_keys: IndexKeys, reserve: Callable[[int], int], block: int = BLOCK) -> None:
        self._keys, self._reserve, self._block = index_keys, reserve, block
        self._lock = threading.Lock()
        self._next = self._end = 0

    def issue(self, domain: str, n: int) -> list[tuple[str, int, bytes]]:
        """`n` new tokens of `domain`, each with its locator and check (stored with its row).

        Call it outside any transaction: a new block is reserved in a transaction of its own."""
        if n == 0:
            return []
        locators = self._take(n)
        sealed = LocatorCipher(self._keys.locator_key(domain)).seal(locators)
        return [(token, locator, check) for locator, (token, check) in zip(locators, sealed)]

    def locate(self, domain: str, tokens: Sequence[str]) -> list[tuple[int, bytes]]:
        """The (locator, check) each opaque token of `tokens` opens to under `domain`'s key (no I/O)."""
        opaque = [t for t in tokens if tk.is_opaque_token(t)]
        return LocatorCipher(self._keys.locator_key(domain)).open(opaque) if opaque else []

    def _take(self, n: int) -> list[int]:
        out: list[int] = []
        with self._lock:
            while len(out) < n:
                if self._next == self._end:
                    size = max(self._block, n - len(out))
                    self._next = self._reserve(size)
                    self._end = self._next + size
                k = min(n - len(out), self._end - self._next)
                out += range(self._next, self._next + k)
                self._next += k
        return out

    def __repr__(self) -> str:
        return "SequentialTokens(<redacted>)"
