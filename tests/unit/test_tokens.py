"""Token generation and strict parsing; per-field key derivation and blind indexes."""

from __future__ import annotations

import base64
import os
import re

import pytest

from vault.crypto import tokens as tk
from vault.crypto.index import INDEX_BYTES, blind_index, derive_key
from vault.secret import SecretBytes

STRICT = re.compile(r"pdv_[A-Za-z0-9_-]{21}[AQgw]")


def _body_bytes(token: str) -> bytes:
    return base64.urlsafe_b64decode(token[len("pdv_"):] + "==")


# --- random tokens -----------------------------------------------------------------

def test_random_tokens_match_the_strict_format_and_carry_128_bits() -> None:
    for _ in range(1000):
        token = tk.random_token()
        assert STRICT.fullmatch(token) and len(token) == 26
        assert tk.is_opaque_token(token)
        raw = _body_bytes(token)
        assert len(raw) == 16
        assert tk._encode(raw) == token  # canonical: decoding and re-encoding gives the same text


def test_random_tokens_are_unique_over_100k() -> None:
    assert len({tk.random_token() for _ in range(100_000)}) == 100_000


def test_random_token_bits_are_balanced() -> None:
    # Every one of the 128 bit positions varies: no constant field (version, shard, zeroed time).
    tokens = [int.from_bytes(_body_bytes(tk.random_token()), "big") for _ in range(2000)]
    for bit in range(128):
        ones = sum((t >> bit) & 1 for t in tokens)
        assert 800 < ones < 1200, f"bit {bit} is set in {ones}/2000 tokens"


def test_tokens_made_in_sequence_share_no_prefix() -> None:
    # A subject, timestamp or counter inside would make consecutive tokens share leading
    # characters. By chance the first body character matches 1 time in 64 (~156 of 10,000).
    pairs = [(tk.random_token(), tk.random_token()) for _ in range(10_000)]
    same_first = sum(a[4] == b[4] for a, b in pairs)
    same_two = sum(a[4:6] == b[4:6] for a, b in pairs)
    assert same_first < 300
    assert same_two < 20  # chance: ~2.4


# --- strict parsing ----------------------------------------------------------------

GOOD = "pdv_" + "A" * 21 + "w"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "pdv_",
        GOOD[:-1],  # 25 characters
        GOOD + "A",  # 27 characters
        "PDV_" + GOOD[4:],  # prefix is case-sensitive
        "pdv-" + GOOD[4:],
        "tok_" + GOOD[4:],
        "sub_" + GOOD[4:],  # a subject id is not a token
        "xpdv_" + GOOD[5:],
        "pdv_" + "A" * 20 + "+w",  # standard base64, not URL-safe
        "pdv_" + "A" * 20 + "/w",
        "pdv_" + "A" * 20 + "=w",
        "pdv_" + "A" * 21 + "=",  # padding
        "pdv_" + "A" * 21 + "B",  # non-canonical last char: the 2 spare bits must be zero
        "pdv_" + "A" * 21 + "x",
        "pdv_" + "A" * 21 + "_",
        "pdv_" + "A" * 20 + " w",
        " " + GOOD[1:],
        GOOD[:-1] + "\n",
        "pdv_" + "A" * 20 + "\u00c5w",  # unicode letter
        "pdv_" + "A" * 20 + "\uff21w",  # fullwidth A
        "pdv_" + "A" * 20 + "\u0661w",  # Arabic-Indic digit one
        "pdv_" + "A" * 20 + "\u200bw",  # zero-width space
        "p\u0501v_" + "A" * 21 + "w",  # Cyrillic look-alike in the prefix
    ],
)
def test_is_opaque_token_rejects_near_misses(text: str) -> None:
    assert not tk.is_opaque_token(text)


def test_is_opaque_token_accepts_every_canonical_last_char() -> None:
    for last in "AQgw":
        assert tk.is_opaque_token("pdv_" + "-_" * 10 + "a" + last)


# --- deterministic tokens ----------------------------------------------------------

def test_deterministic_tokens() -> None:
    key, other_key = os.urandom(32), os.urandom(32)
    token = tk.deterministic_token(key, "ada@example.org")
    assert tk.deterministic_token(key, "ada@example.org") == token
    assert tk.deterministic_token(other_key, "ada@example.org") != token
    assert tk.deterministic_token(key, "ada@example.org ") != token
    assert tk.deterministic_token(key, "bob@example.org") != token
    # They look like random tokens: same syntax, same length, nothing of the value inside.
    assert STRICT.fullmatch(token) and tk.is_opaque_token(token)
    assert "ada" not in token.lower()
    assert len({tk.deterministic_token(key, f"user{i}@example.org") for i in range(10_000)}) == 10_000


# --- format-preserving tokens ------------------------------------------------------

@pytest.mark.parametrize("value", ["123456789", "212-555-0100", "AB12cd-34 EF", "D1234567", "x"])
def test_format_preserving_token_keeps_the_shape(value: str) -> None:
    for _ in range(200):
        token = tk.format_preserving_token(value)
        assert len(token) == len(value)
        for v, t in zip(value, token):
            if v.isdigit():
                assert t in "0123456789"
            elif v.isupper():
                assert t.isascii() and t.isupper()
            elif v.islower():
                assert t.isascii() and t.islower()
            else:
                assert t == v
        assert tk.is_plausible_format_preserving(token)


def test_format_preserving_tokens_are_random() -> None:
    tokens = [tk.format_preserving_token("123456789") for _ in range(5000)]
    assert len(set(tokens)) > 4990  # 10^9 possibilities: collisions are rare
    for position in range(9):
        assert {t[position] for t in tokens} == set("0123456789")
    letters = {tk.format_preserving_token("aaaaaaaa") for _ in range(1000)}
    assert len(letters) == 1000
    assert set("".join(letters)) == set("abcdefghijklmnopqrstuvwxyz")


# --- index keys --------------------------------------------------------------------

def test_derive_key_separates_uses_and_fields() -> None:
    root = SecretBytes(os.urandom(32))
    uses = ["deterministic-token", "blind-index", "request-fingerprint"]
    fields = ["", "email", "ssn", "phone", "emai", "email2"]
    keys = {(u, f): derive_key(root, u, f) for u in uses for f in fields}
    assert all(len(k) == 32 for k in keys.values())
    assert len(set(keys.values())) == len(keys)
    assert derive_key(root, "blind-index", "email") == keys[("blind-index", "email")]
    assert derive_key(SecretBytes(os.urandom(32)), "blind-index", "email") != keys[("blind-index", "email")]


def test_the_default_domain_derives_the_keys_of_before_and_each_domain_its_own() -> None:
    """Known answer: the default domain's context is exactly the pre-domain one (HKDF-SHA256,
    no salt, info pdv/v1/<use>/<field>), so tokens and indexes stored before domains stay valid."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from vault.services.index_keys import IndexKeys

    root = SecretBytes(bytes(range(32)))
    before = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"pdv/v1/blind-index/email").derive(root.reveal())
    keys = IndexKeys(root)
    assert keys.index_key("email") == keys.index_key("email", "city") == before
    assert keys.token_key("email", "city") == HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"pdv/v1/deterministic-token/email").derive(root.reveal())
    others = {keys.index_key("email", d) for d in ("partner:acme", "partner:globex", "vendors")}
    assert len(others) == 3 and before not in others
    assert keys.token_key("email", "partner:acme") not in others | {keys.token_key("email")}
    assert derive_key(root, "blind-index", "email", "vendors") == HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"pdv/v1/blind-index/email/domain/vendors").derive(root.reveal())


def test_blind_index_is_deterministic_per_key() -> None:
    key, other_key = os.urandom(32), os.urandom(32)
    index = blind_index(key, "ada@example.org")
    assert len(index) == INDEX_BYTES
    assert blind_index(key, "ada@example.org") == index
    assert blind_index(other_key, "ada@example.org") != index
    assert blind_index(key, "bob@example.org") != index
    assert b"ada" not in index
