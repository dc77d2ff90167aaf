"""The KeyProvider port: what the domain needs from Vault, and nothing else."""

from __future__ import annotations

from typing import Protocol, Sequence

from vault.domain import WrappedKey
from vault.secret import SecretBytes


class KeyProvider(Protocol):
    """Wraps and unwraps data-encryption keys under a key-encryption key it never reveals."""

    def wrap_keys(self, keys: Sequence[SecretBytes]) -> list[WrappedKey]:
        """Encrypt each DEK under the current KEK version, in as few calls as the backend allows.

        Raises:
            KeyUnavailable: the backend is sealed, unreachable, slow past its deadline or refused.
        """
        ...

    def unwrap_keys(self, wrapped: Sequence[WrappedKey]) -> list[SecretBytes]:
        """Decrypt each wrapped DEK, in order, batching calls.

        Raises:
            KeyUnavailable: as for wrap_keys.
            DecryptionFailed: a wrapped key did not decrypt (tampered, or its KEK version trimmed).
        """
        ...

    def check(self) -> None:
        """Raise KeyUnavailable unless the backend is reachable, unsealed and the KEK usable."""
        ...


class Rewrapper(Protocol):
    """Re-encrypts wrapped DEKs under the KEK's newest version; the DEKs never leave Vault.

    The admin's KeyAdmin is one; so is the service's own key provider (its token may rewrap),
    which lets a running server rewrap after a rotation without an admin token.
    """

    def latest_version(self) -> int:
        """The KEK version that wraps and rewraps use now.

        Raises:
            KeyUnavailable: the backend is sealed, unreachable or refused.
        """
        ...

    def rewrap(self, wrapped: Sequence[WrappedKey]) -> list[WrappedKey | None]:
        """Each wrapped DEK re-encrypted under the latest version, in order, batching calls; None
        for an item the backend could not rewrap (tampered, or its version retired).

        Raises:
            KeyUnavailable: as for latest_version().
        """
        ...


class Signer(Protocol):
    """Signs with a key that never leaves Vault, and checks such signatures."""

    def sign(self, payloads: Sequence[bytes]) -> list[str]:
        """One signature per payload, in order, batching calls.

        Raises:
            KeyUnavailable: the backend is sealed, unreachable or refused.
        """
        ...

    def verify(self, payload: bytes, signature: str) -> bool:
        """True only for a valid signature of this key over `payload`."""
        ...
