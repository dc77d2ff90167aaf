"""The KeyAdmin port: what KEK rotation needs from Vault beyond the service's KeyProvider.

Held by `pdv keys … --local` running with an admin token, and by a server only when it is
started with kek_admin_over_api (AdminService's rotate, schedule and trim); otherwise the
server never gets one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping, Protocol, Sequence

from vault.domain import WrappedKey


@dataclass(frozen=True, slots=True)
class KekVersions:
    """The KEK's version bookkeeping as Vault reports it.

    `created` maps each version still listed by Vault (those at or above
    min_decryption_version) to its creation time; `min_available` is 0 until a trim;
    `auto_rotate_period` is how often Vault rotates the key by itself (None: never).
    """

    latest: int
    min_decryption: int
    min_encryption: int
    min_available: int
    created: Mapping[int, datetime]
    auto_rotate_period: timedelta | None = None

    @property
    def next_rotation(self) -> datetime | None:
        """When Vault will rotate by itself (the latest version's age reaching the period)."""
        made = self.created.get(self.latest)
        return made + self.auto_rotate_period if made and self.auto_rotate_period else None


class KeyAdmin(Protocol):
    """Rotates the KEK, rewraps wrapped DEKs to its newest version and retires old versions."""

    def versions(self) -> KekVersions:
        """Read the KEK's versions (metadata only, never key material).

        Raises:
            KeyUnavailable: Vault sealed, unreachable, or the token may not read the key.
        """
        ...

    def rotate(self) -> int:
        """Add a new KEK version; new wraps use it from now on. Returns the new latest version.

        Raises:
            KeyUnavailable: as for versions().
        """
        ...

    def latest_version(self) -> int:
        """The KEK's newest version (see vault.keys.provider.Rewrapper)."""
        ...

    def rewrap(self, wrapped: Sequence[WrappedKey]) -> list[WrappedKey | None]:
        """Re-encrypt each wrapped DEK under the latest KEK version without revealing it.

        One Vault call per batch. An item Vault could not rewrap (tampered, or its version
        already retired) comes back as None, so one bad row cannot stall a whole rewrap.

        Raises:
            KeyUnavailable: as for versions().
        """
        ...

    def set_auto_rotate(self, period: timedelta | None) -> None:
        """Have Vault rotate the KEK by itself every `period` (None: stop). Vault accepts
        periods of an hour or more.

        Raises:
            KeyUnavailable: as for versions(), or Vault refused the period.
        """
        ...

    def set_min_versions(self, min_decryption: int, min_encryption: int) -> None:
        """Set min_decryption_version and min_encryption_version (reversible until a trim).

        Raises:
            KeyUnavailable: as for versions(), or Vault refused the values.
        """
        ...

    def trim(self, min_available: int) -> None:
        """Delete every KEK version below `min_available` for good.

        Raises:
            KeyUnavailable: as for versions(), or Vault refused (it needs both minimum
                versions raised to at least `min_available` first).
        """
        ...
