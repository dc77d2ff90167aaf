"""AES-256-GCM field encryption: published known-answer vectors, row binding, and one opaque failure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vault.crypto.aead import NONCE_BYTES, DataKey, new_data_key, request_aad, row_aad
from vault.errors import DecryptionFailed
from vault.secret import SecretBytes

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "aes256gcm.json").read_text())["vectors"]
TOKEN = "pdv_AAAAAAAAAAAAAAAAAAAAAA"
HEADER_BYTES = 5  # format (1) | key version (4, big-endian)


def _header(key_version: int) -> bytes:
    return bytes([1]) + key_version.to_bytes(4, "big")


@pytest.mark.parametrize("key_version", [1, 0x01020304])
@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_known_answer(vector: dict[str, str], key_version: int) -> None:
    key, iv, pt, aad, ct, tag = (bytes.fromhex(vector[k]) for k in ("key", "iv", "plaintext", "aad", "ciphertext", "tag"))
    data_key = DataKey(SecretBytes(key), key_version)
    blob = data_key._seal_with_nonce(pt, aad, iv)
    assert blob == _header(key_version) + iv + ct + tag
    assert data_key.open(blob, aad) == pt


def test_row_aad_encoding() -> None:
    # format 1 | key version 7 (u32 BE) | then each part as u16 BE length + UTF-8 bytes:
    # "pdv-field", subject, field, token. "ü" is two UTF-8 bytes: lengths count bytes, not characters.
    expected = bytes.fromhex(
        "01" "00000007"
        "0009" "7064762d6669656c64"  # pdv-field
        "0006" "7375625fc3bc"  # sub_ü
        "0005" "656d61696c"  # email
        "0003" "746f6b"  # tok
    )
    assert row_aad("sub_ü", "email", "tok", 7) == expected


def test_row_aad_is_unambiguous() -> None:
    # Length prefixes: moving a byte from one part to the next changes the encoding.
    assert row_aad("sub_a", "bc", TOKEN, 1) != row_aad("sub_ab", "c", TOKEN, 1)
    assert row_aad("sub_a", "email", "", 1) != row_aad("sub_a", "", "email", 1)


def _key(version: int = 1) -> DataKey:
    return DataKey(new_data_key(), version)


def _sealed(data_key: DataKey, plaintext: bytes = b"ada@example.org") -> tuple[bytes, bytes]:
    aad = row_aad("sub_one", "email", TOKEN, data_key.version)
    return data_key.seal(plaintext, aad), aad


def _failure(action) -> DecryptionFailed:  # type: ignore[no-untyped-def]
    with pytest.raises(DecryptionFailed) as info:
        action()
    return info.value


def _assert_opaque(errors: list[DecryptionFailed]) -> None:
    """Every failure: exactly DecryptionFailed, the same message, no chained foreign error to inspect."""
    assert errors
    for err in errors:
        assert type(err) is DecryptionFailed
        assert str(err) == "decryption failed"
        assert err.__cause__ is None
        assert err.__context__ is None or err.__suppress_context__


@pytest.mark.parametrize(
    "moved_to",
    [
        ("sub_two", "email", TOKEN, 1),  # another subject
        ("sub_one", "phone", TOKEN, 1),  # another field
        ("sub_one", "email", "pdv_BAAAAAAAAAAAAAAAAAAAAA", 1),  # another token
        ("sub_one", "email", TOKEN, 2),  # another key version in the AAD
    ],
    ids=["subject", "field", "token", "key-version"],
)
def test_ciphertext_moved_to_another_row_fails(moved_to: tuple[str, str, str, int]) -> None:
    data_key = _key()
    blob, aad = _sealed(data_key)
    assert data_key.open(blob, aad) == b"ada@example.org"
    _assert_opaque([_failure(lambda: data_key.open(blob, row_aad(*moved_to)))])


def test_every_single_bit_flip_fails() -> None:
    data_key = _key()
    blob, aad = _sealed(data_key, b"12345678")
    errors = []
    for bit in range(len(blob) * 8):
        flipped = bytearray(blob)
        flipped[bit // 8] ^= 1 << (bit % 8)
        errors.append(_failure(lambda: data_key.open(bytes(flipped), aad)))
    assert len(errors) == len(blob) * 8
    _assert_opaque(errors)


def test_truncated_or_extended_blobs_fail() -> None:
    data_key = _key()
    blob, aad = _sealed(data_key)
    errors = [_failure(lambda: data_key.open(blob[:n], aad)) for n in range(len(blob))]
    errors.append(_failure(lambda: data_key.open(blob + b"\x00", aad)))
    _assert_opaque(errors)


def test_wrong_key_fails() -> None:
    blob, aad = _sealed(_key())
    other = _key()  # same version, different key material
    _assert_opaque([_failure(lambda: other.open(blob, aad))])


def test_all_failures_are_one_indistinguishable_error() -> None:
    data_key = _key(3)
    blob, aad = _sealed(data_key)
    flipped = bytearray(blob)
    flipped[-1] ^= 1
    errors = [
        _failure(lambda: data_key.open(blob, row_aad("sub_two", "email", TOKEN, 3))),
        _failure(lambda: data_key.open(bytes(flipped), aad)),
        _failure(lambda: data_key.open(blob[:10], aad)),
        _failure(lambda: data_key.open(b"", aad)),
        _failure(lambda: _key(3).open(blob, aad)),
        _failure(lambda: _key(4).open(blob, aad)),  # header names another key version
        _failure(lambda: data_key.open(b"\x02" + blob[1:], aad)),  # unknown format byte
    ]
    _assert_opaque(errors)
    assert len({(type(e), str(e), e.args) for e in errors}) == 1


def test_ten_thousand_seals_never_reuse_a_nonce() -> None:
    data_key = _key()
    aad = row_aad("sub_one", "email", TOKEN, 1)
    blobs = [data_key.seal(b"same plaintext", aad) for _ in range(10_000)]
    nonces = {blob[HEADER_BYTES:HEADER_BYTES + NONCE_BYTES] for blob in blobs}
    assert len(nonces) == 10_000
    assert len(set(blobs)) == 10_000
    assert all(data_key.open(blob, aad) == b"same plaintext" for blob in blobs[:100])


def test_data_key_must_be_256_bits() -> None:
    for size in (0, 16, 24, 31, 33):
        with pytest.raises(ValueError):
            DataKey(SecretBytes(os.urandom(size)), 1)


def test_request_aad_encoding_and_binding() -> None:
    # format 1 | key version 1 | "pdv-request" | request id | part, each u16 BE length-prefixed.
    expected = bytes.fromhex(
        "01" "00000001"
        "000b" "7064762d72657175657374"  # pdv-request
        "0005" "7265715f31"  # req_1
        "0008" "726573706f6e7365"  # response
    )
    assert request_aad("req_1", "response", 1) == expected
    key = _key()
    blob = key.seal(b"please delete my data", request_aad("req_1", "description", 1))
    for elsewhere in (request_aad("req_2", "description", 1), request_aad("req_1", "response", 1),
                      row_aad("req_1", "description", "", 1)):
        with pytest.raises(DecryptionFailed):
            key.open(blob, elsewhere)
    assert key.open(blob, request_aad("req_1", "description", 1)) == b"please delete my data"
