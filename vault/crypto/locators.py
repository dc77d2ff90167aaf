"""Sequential tokens: a random-looking token that is one AES-256 block over a row's locator.

A token is `pdv_` + the URL-safe base64 of AES-256(key, locator ‖ check): the row's 64-bit
locator (sequential, so the row's index entry is appended, not scattered) and a 64-bit random
check stored with the row. One block under a fixed key is a pseudorandom permutation: no
nonce is involved, distinct (locator, check) pairs give distinct tokens, and without the key
a token says nothing of its locator. Opening is the inverse permutation; whether the result
names a real row is for the row's stored check to say (compared in constant time by the
reader), so a guessed or altered token opens to a locator with no row or a check that does
not match — a miss. The token looks exactly like a random one (`vault.crypto.tokens`).

With the key alone, an attacker learns a token's locator (roughly when its row was written
and in what order) and nothing else: not the value (sealed under the subject's DEK), and no
valid token, since the check is random and stored only in the row.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from vault.crypto.tokens import PREFIX, TOKEN_BYTES

CHECK_BYTES = 8
_BLOCK = TOKEN_BYTES  # one AES block
_CHARS = 22  # base64 of 16 bytes, without its padding
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_LOCATOR = struct.Struct(">Q")
_LOCATOR_SIGNED = struct.Struct(">q")


class LocatorCipher:
    """Seals (locator, check) pairs into tokens and opens tokens back, under one 256-bit key.

    Not shared between threads: make one per call (cheap) or per thread.
    """

    __slots__ = ("_encryptor", "_decryptor")

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a locator key is 256 bits")
        cipher = Cipher(algorithms.AES(key), modes.ECB())  # exactly one block per token: a PRP
        self._encryptor, self._decryptor = cipher.encryptor(), cipher.decryptor()

    def __repr__(self) -> str:
        return "LocatorCipher(<redacted>)"

    def __reduce__(self) -> object:
        raise TypeError("a LocatorCipher holds a key and is never pickled")

    def seal(self, locators: list[int]) -> list[tuple[str, bytes]]:
        """A token and its fresh random check for each locator (in [0, 2^63)), in order."""
        n = len(locators)
        checks = os.urandom(CHECK_BYTES * n)
        pack = _LOCATOR.pack
        sealed = self._encryptor.update(b"".join([pack(loc) + checks[i * 8:i * 8 + 8] for i, loc in enumerate(locators)]))
        b2a = binascii.b2a_base64
        return [
            (PREFIX + b2a(sealed[j:j + _BLOCK], newline=False)[:_CHARS].translate(_URLSAFE).decode("ascii"),
             checks[i * 8:i * 8 + 8])
            for i, j in enumerate(range(0, _BLOCK * n, _BLOCK))
        ]

    def open(self, tokens: list[str]) -> list[tuple[int, bytes]]:
        """(locator, check) of each opaque token (syntax already checked), in order. Every
        token opens to something: a token never issued opens to a locator that names no row
        or whose row's check differs. Locators are signed 64-bit, as the database keeps them."""
        if not tokens:
            return []
        start = len(PREFIX)
        plain = self._decryptor.update(b"".join([base64.urlsafe_b64decode(t[start:] + "==") for t in tokens]))
        unpack = _LOCATOR_SIGNED.unpack_from
        return [(unpack(plain, j)[0], plain[j + 8:j + _BLOCK]) for j in range(0, _BLOCK * len(tokens), _BLOCK)]
