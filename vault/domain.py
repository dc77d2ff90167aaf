"""Plain values that cross the layers. Frozen, and free of personal data unless named so."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A DEK encrypted by the Vault Transit KEK: Vault's own `vault:vN:...` text."""

    ciphertext: str

    @property
    def kek_version(self) -> int:
        # Vault's format is "vault:v<N>:<base64>"; the version is part of the text.
        prefix, version, _ = self.ciphertext.split(":", 2)
        if prefix != "vault" or not version.startswith("v"):
            raise ValueError("not a Vault Transit ciphertext")
        return int(version[1:])

    def __repr__(self) -> str:
        return f"WrappedKey(kek_version={self.kek_version})"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a city system, a partner or an operator."""

    name: str


# Residents' privacy requests (vault/services/rights/): what may be asked, and the workflow
# RECEIVED -> IN_PROGRESS -> ANSWERED | REJECTED | WITHDRAWN (a received one may also be
# rejected or withdrawn directly). The final statuses close a request.
REQUEST_KINDS = ("access", "correction", "deletion", "restriction", "complaint", "disclosure")
REQUEST_STATUSES = ("received", "in_progress", "answered", "rejected", "withdrawn")
FINAL_STATUSES = frozenset({"answered", "rejected", "withdrawn"})
REQUEST_TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset({"in_progress", "rejected", "withdrawn"}),
    "in_progress": frozenset({"answered", "rejected", "withdrawn"}),
    "answered": frozenset(), "rejected": frozenset(), "withdrawn": frozenset(),
}
