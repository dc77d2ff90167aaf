"""AES-256-GCM field encryption bound to its row.

Stored bytes describe themselves:  format (1) | key version (4, big-endian) | nonce (12) | ciphertext+tag.
The associated data is built in exactly one place (`row_aad`) from the format
version, subject, field, token and key version, so a ciphertext copied into
another row fails to decrypt; a privacy request's texts get theirs from
`request_aad` (request id and part, under a label of their own).
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import DecryptionFailed
from vault.secret import SecretBytes

FORMAT_V1 = 1
NONCE_BYTES = 12
KEY_BYTES = 32
_HEADER = struct.Struct(">BI")
_PREFIX = _HEADER.size + NONCE_BYTES
_LENGTH = struct.Struct(">H")
_LABEL = _LENGTH.pack(len(b"pdv-field")) + b"pdv-field"
_REQUEST_LABEL = _LENGTH.pack(len(b"pdv-request")) + b"pdv-request"


def row_aad(subject_id: str, field: str, token: str, key_version: int) -> bytes:
    """Canonical associated data: length-prefixed parts, so no two rows share an encoding."""
    subject, name, tok = subject_id.encode(), field.encode(), token.encode()
    return b"".join((
        _HEADER.pack(FORMAT_V1, key_version), _LABEL,
        _LENGTH.pack(len(subject)), subject, _LENGTH.pack(len(name)), name, _LENGTH.pack(len(tok)), tok,
    ))


def request_aad(request_id: str, part: str, key_version: int) -> bytes:
    """Associated data of a privacy request's free text: the request and which text (description,
    contact, response), under its own label, so it never matches a field value's encoding."""
    request, name = request_id.encode(), part.encode()
    return b"".join((
        _HEADER.pack(FORMAT_V1, key_version), _REQUEST_LABEL,
        _LENGTH.pack(len(request)), request, _LENGTH.pack(len(name)), name,
    ))


def new_data_key() -> SecretBytes:
    """A fresh 256-bit DEK from the OS CSPRNG."""
    return SecretBytes(os.urandom(KEY_BYTES))


class DataKey:
    """One subject's DEK at one version, ready to seal and open field values."""

    __slots__ = ("version", "_aead")

    def __init__(self, secret: SecretBytes, version: int) -> None:
        if len(secret) != KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        self.version = version
        self._aead = AESGCM(secret.reveal())

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt under a fresh random 96-bit nonce; `aad` must come from `row_aad`."""
        return self._seal_with_nonce(plaintext, aad, os.urandom(NONCE_BYTES))

    def _seal_with_nonce(self, plaintext: bytes, aad: bytes, nonce: bytes) -> bytes:
        # Test seam for known-answer vectors; production always goes through seal().
        return _HEADER.pack(FORMAT_V1, self.version) + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt and authenticate; every failure is the same DecryptionFailed."""
        if len(blob) < _PREFIX + 16:
            raise DecryptionFailed()
        fmt, version = _HEADER.unpack_from(blob)
        if fmt != FORMAT_V1 or version != self.version:
            raise DecryptionFailed()
        try:
            return self._aead.decrypt(blob[_HEADER.size:_PREFIX], blob[_PREFIX:], aad)
        except InvalidTag:
            raise DecryptionFailed() from None

    def __repr__(self) -> str:
        return f"DataKey(version={self.version}, <redacted>)"

    def __reduce__(self) -> object:
        raise TypeError("DataKey cannot be pickled")
