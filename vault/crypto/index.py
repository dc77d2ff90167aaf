"""Per-field keys derived from the Vault-protected index root, and blind indexes.

HKDF-SHA256 separates keys by use (deterministic token, blind index, request
fingerprint), by field, and for deterministic tokens and blind indexes by token domain,
so one field's index says nothing about another's and one domain's tokens and indexes
say nothing about another's. The default domain has no domain part in its context: its
keys are the ones derived before domains existed, so data stored then keeps working.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.secret import SecretBytes

INDEX_BYTES = 16


def derive_key(root: SecretBytes, use: str, field: str = "", domain: str = "") -> bytes:
    """A 256-bit subkey of the index root for one use, one field and (unless "") one token domain.

    Field names never contain "/", so `.../<field>/domain/<name>` cannot be read as another
    field's context; "" (the default domain) gives exactly the pre-domain context.
    """
    info = b"pdv/v1/" + use.encode() + b"/" + field.encode()
    if domain:
        info += b"/domain/" + domain.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(root.reveal())


def blind_index(field_key: bytes, normalized_value: str) -> bytes:
    """Keyed, truncated HMAC-SHA256 of the normalized value: searchable, not reversible."""
    return blind_index_bytes(field_key, normalized_value.encode())


def blind_index_bytes(field_key: bytes, normalized_value: bytes) -> bytes:
    """`blind_index` of a normalized value already encoded as UTF-8 (the tokenize path has it)."""
    return hmac.digest(field_key, normalized_value, "sha256")[:INDEX_BYTES]
