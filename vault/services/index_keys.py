"""The index root: a random secret wrapped by the KEK, from which per-field HMAC keys derive.

Deterministic-token and blind-index keys are also per token domain (vault/services/domains):
the default domain's are the keys derived before domains existed, so its stored tokens and
indexes stay valid; every other domain's context names the domain.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache

from vault.crypto.aead import new_data_key
from vault.crypto.index import derive_key
from vault.domain import WrappedKey
from vault.errors import Conflict
from vault.keys.provider import KeyProvider
from vault.policy import DEFAULT_DOMAIN
from vault.secret import SecretBytes
from vault.storage.store import Store

ROOT_NAME = "index-root"


class IndexKeys:
    """Per-field (and per-domain) keys for deterministic tokens and blind indexes, and the request fingerprint key."""

    def __init__(self, root: SecretBytes) -> None:
        self._root = root
        self.token_key = lru_cache(maxsize=None)(self._token_key)
        self.index_key = lru_cache(maxsize=None)(self._index_key)
        self.locator_key = lru_cache(maxsize=None)(self._locator_key)
        self.fingerprint_key = derive_key(root, "request-fingerprint")
        self.audit_key = derive_key(root, "audit-chain")  # the access-log hash chain (services/audit.py)

    def _token_key(self, field: str, domain: str = DEFAULT_DOMAIN) -> bytes:
        return derive_key(self._root, "deterministic-token", field, _context(domain))

    def _index_key(self, field: str, domain: str = DEFAULT_DOMAIN) -> bytes:
        return derive_key(self._root, "blind-index", field, _context(domain))

    def _locator_key(self, domain: str) -> bytes:
        """The AES-256 key of a domain's sequential tokens (vault/crypto/locators.py): its own use,
        and every domain's context names it (there were no such tokens before domains)."""
        return derive_key(self._root, "token-locator", "", domain)

    def pseudonym_key(self, field: str) -> bytes:
        """The key of the pseudonym de-identification keeps of an expired value: its own use,
        so a kept pseudonym is no blind index (it cannot be looked up in the vault)."""
        return derive_key(self._root, "disposal-pseudonym", field)

    def correction_key(self, field: str) -> bytes:
        """The key of the fingerprint a correction keeps of the value it replaced: its own use,
        so a fingerprint is neither a blind index nor a deterministic token (it cannot be
        looked up, nor matched against a token a holder kept)."""
        return derive_key(self._root, "correction-fingerprint", field)

    def __repr__(self) -> str:
        return "IndexKeys(<redacted>)"

    @classmethod
    def load(cls, store: Store, provider: KeyProvider) -> "IndexKeys | None":
        """Unwrap the stored root; None if none was ever made (read-only, for admin tools)."""
        with store.snapshot() as tx:
            wrapped = tx.get_secret(ROOT_NAME)
        if wrapped is None:
            return None
        (root,) = provider.unwrap_keys([WrappedKey(wrapped)])
        return cls(root)

    @classmethod
    def load_or_create(cls, store: Store, provider: KeyProvider, clock: Callable[[], datetime]) -> "IndexKeys":
        """Unwrap the stored root, or make, wrap and store one on first start (race-safe)."""
        with store.transaction() as tx:
            wrapped = tx.get_secret(ROOT_NAME)
        if wrapped is None:
            secret = new_data_key()
            (fresh,) = provider.wrap_keys([secret])
            try:
                with store.transaction() as tx:
                    if tx.get_secret(ROOT_NAME) is None:
                        tx.add_secret(ROOT_NAME, fresh.ciphertext, clock())
            except Conflict:
                pass  # another replica stored its root first; use that one
            with store.transaction() as tx:
                wrapped = tx.get_secret(ROOT_NAME)
        assert wrapped is not None
        (root,) = provider.unwrap_keys([WrappedKey(wrapped)])
        return cls(root)


def _context(domain: str) -> str:
    """The domain part of a key's HKDF context: none for the default domain (today's keys)."""
    return "" if domain == DEFAULT_DOMAIN else domain
