"""Key material cannot be printed, logged, pickled or copied by accident."""

from __future__ import annotations

import base64
import copy
import os
import pickle

import pytest

import vault.secret
from vault.crypto.aead import DataKey
from vault.domain import WrappedKey
from vault.secret import SecretBytes


def _renderings(raw: bytes) -> list[str]:
    """The forms a key's bytes could take in a log line."""
    return [
        repr(raw), raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="), raw.decode("latin-1"),
    ]


def _assert_redacted(text: str, raw: bytes) -> None:
    assert "redacted" in text
    for form in _renderings(raw):
        assert form not in text
    # No 4-byte window of the key in any encoding either.
    for i in range(len(raw) - 3):
        assert raw[i:i + 4].hex() not in text


@pytest.mark.parametrize("render", [repr, str, lambda o: f"{o}", lambda o: f"{o!r}", lambda o: "%s" % (o,)])
def test_secret_bytes_never_renders_its_bytes(render) -> None:  # type: ignore[no-untyped-def]
    raw = os.urandom(32)
    _assert_redacted(render(SecretBytes(raw)), raw)
    _assert_redacted(render([SecretBytes(raw)]), raw)  # inside a container, as in a traceback's locals


def test_data_key_never_renders_its_bytes() -> None:
    raw = os.urandom(32)
    data_key = DataKey(SecretBytes(raw), 4)
    for text in (repr(data_key), str(data_key), f"{data_key}"):
        _assert_redacted(text, raw)
        assert "version=4" in text


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_secrets_cannot_be_pickled(protocol: int) -> None:
    secret = SecretBytes(os.urandom(32))
    with pytest.raises(TypeError):
        pickle.dumps(secret, protocol=protocol)
    with pytest.raises(TypeError):
        pickle.dumps(DataKey(secret, 1), protocol=protocol)


def test_secrets_cannot_be_copied_around_their_guard() -> None:
    secret = SecretBytes(os.urandom(32))
    for clone in (copy.copy, copy.deepcopy):
        with pytest.raises(TypeError):
            clone(secret)
        with pytest.raises(TypeError):
            clone(DataKey(secret, 1))


def test_reveal_is_the_way_out() -> None:
    raw = os.urandom(32)
    secret = SecretBytes(bytearray(raw))
    assert secret.reveal() == raw and isinstance(secret.reveal(), bytes)
    assert len(secret) == 32
    with pytest.raises(TypeError):
        SecretBytes("not bytes")  # type: ignore[arg-type]


def test_equality_compares_contents_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = os.urandom(32)
    calls = []
    real = vault.secret.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(vault.secret.hmac, "compare_digest", spy)
    assert SecretBytes(raw) == SecretBytes(raw)
    assert SecretBytes(raw) != SecretBytes(os.urandom(32))
    assert SecretBytes(raw) != SecretBytes(raw[:16])
    assert calls == [(32, 32), (32, 32), (32, 16)]
    # Never equal to plain bytes: a secret is compared with a secret or not at all.
    assert SecretBytes(raw) != raw
    assert raw != SecretBytes(raw)
    with pytest.raises(TypeError):
        hash(SecretBytes(raw))


def test_wrapped_key_repr_shows_only_the_version() -> None:
    body = base64.b64encode(os.urandom(60)).decode()
    wrapped = WrappedKey(f"vault:v7:{body}")
    assert repr(wrapped) == "WrappedKey(kek_version=7)"
    assert str(wrapped) == "WrappedKey(kek_version=7)"
    assert body not in repr([wrapped]) and body[:8] not in repr(wrapped)
    assert wrapped.kek_version == 7
