"""Sequential tokens (vault/crypto/locators.py, vault/services/locators): a random-looking
token over a sequential locator and a random check."""

from __future__ import annotations

import base64
import os
import pickle
import threading

import pytest

from vault.crypto import tokens as tk
from vault.crypto.locators import CHECK_BYTES, LocatorCipher
from vault.secret import SecretBytes
from vault.services.index_keys import IndexKeys
from vault.services.locators import SequentialTokens

KEY = bytes(range(32))


def _body(token: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(token[4:] + "=="), "big")


def test_a_sealed_locator_is_an_opaque_token_and_opens_to_its_locator_and_check() -> None:
    cipher = LocatorCipher(KEY)
    locators = list(range(1, 5001)) + [2**63 - 1]
    sealed = cipher.seal(locators)
    assert all(tk.is_opaque_token(token) and len(check) == CHECK_BYTES for token, check in sealed)
    assert tk._encode(base64.urlsafe_b64decode(sealed[0][0][4:] + "==")) == sealed[0][0]  # canonical text
    assert cipher.open([token for token, _ in sealed]) == [(loc, check) for loc, (_, check) in zip(locators, sealed)]


def test_consecutive_locators_give_tokens_with_balanced_bits_and_no_shared_prefix() -> None:
    # What a caller sees of sequential rows must look like random tokens (tests/unit/test_tokens.py).
    sealed = [token for token, _ in LocatorCipher(os.urandom(32)).seal(list(range(1000, 3000)))]
    bodies = [_body(t) for t in sealed]
    for bit in range(128):
        ones = sum((b >> bit) & 1 for b in bodies)
        assert 800 < ones < 1200, f"bit {bit} is set in {ones}/2000 tokens"
    assert sum(a[4:6] == b[4:6] for a, b in zip(sealed, sealed[1:])) < 20  # chance: ~0.5
    assert len(set(sealed)) == len(sealed)


def test_the_same_locator_sealed_twice_gets_a_new_check_and_a_new_token() -> None:
    cipher = LocatorCipher(KEY)
    (a, check_a), (b, check_b) = cipher.seal([7, 7])
    assert a != b and check_a != check_b


def test_an_altered_token_or_another_key_opens_to_a_different_check() -> None:
    cipher = LocatorCipher(KEY)
    ((token, check),) = cipher.seal([42])
    altered = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert tk.is_opaque_token(altered)
    ((_, altered_check),) = cipher.open([altered])
    ((_, other_check),) = LocatorCipher(os.urandom(32)).open([token])
    assert altered_check != check and other_check != check


def test_the_cipher_never_shows_or_pickles_its_key() -> None:
    cipher = LocatorCipher(KEY)
    assert KEY.hex() not in repr(cipher) and "redacted" in repr(cipher)
    with pytest.raises(TypeError):
        pickle.dumps(cipher)
    with pytest.raises(ValueError):
        LocatorCipher(KEY[:16])


def test_each_domain_has_its_own_locator_key_of_its_own_use() -> None:
    keys = IndexKeys(SecretBytes(os.urandom(32)))
    assert keys.locator_key("city") != keys.locator_key("partner:acme")
    assert keys.locator_key("city") not in {keys.token_key("email"), keys.index_key("email"), keys.fingerprint_key}
    assert keys.locator_key("city") == keys.locator_key("city")


def test_sequential_tokens_take_locators_from_blocks_without_overlap() -> None:
    reserved: list[tuple[int, int]] = []
    lock = threading.Lock()

    def reserve(size: int) -> int:
        with lock:
            first = reserved[-1][0] + reserved[-1][1] if reserved else 1
            reserved.append((first, size))
            return first

    tokens = SequentialTokens(IndexKeys(SecretBytes(os.urandom(32))), reserve, block=100)
    issued: list[tuple[str, int, bytes]] = []

    def issue() -> None:
        for n in (1, 7, 99, 250):
            got = tokens.issue("city", n)
            with lock:
                issued.extend(got)

    threads = [threading.Thread(target=issue) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    locators = [loc for _, loc, _ in issued]
    assert len(locators) == len(set(locators)) == 4 * (1 + 7 + 99 + 250)
    assert all(any(first <= loc < first + size for first, size in reserved) for loc in locators)
    assert tokens.locate("city", [t for t, _, _ in issued]) == [(loc, check) for _, loc, check in issued]
    assert tokens.issue("city", 0) == [] and tokens.locate("city", ["123-45-6789"]) == []
