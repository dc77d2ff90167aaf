"""Per-field keys derived from the Vault-protected index root, and blind indexes.

HKDF-SHA256 separates keys by use (deterministic token, blind index, request
fingerprint) and by field, so one field's index says nothing about another's.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.secret import SecretBytes

INDEX_BYTES = 16


def derive_key(root: SecretBytes, use: str, field: str = "") -> bytes:
    """A 256-bit subkey of the index root for one use and one field."""
    info = b"pdv/v1/" + use.encode() + b"/" + field.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(root.reveal())


def blind_index(field_key: bytes, normalized_value: str) -> bytes:
    """Keyed, truncated HMAC-SHA256 of the normalized value: searchable, not reversible."""
    return blind_index_bytes(field_key, normalized_value.encode())


def blind_index_bytes(field_key: bytes, normalized_value: bytes) -> bytes:
    """`blind_index` of a normalized value already encoded as UTF-8 (the tokenize path has it)."""
    return hmac.digest(field_key, normalized_value, "sha256")[:INDEX_BYTES]
