"""KeyProvider on Vault / OpenBao Transit: DEKs wrapped by a KEK that never leaves Vault.

With openbao.py, the only module of `vault` that imports hvac. Every Vault call goes through
`TransitKeyProvider._post`, and `_translate` is the one place hvac and requests errors become
domain errors. DEKs are wrapped without Transit associated data on purpose: Transit rewrap takes
none, and rows are bound by the AAD of our own AES-GCM layer instead.
"""

from __future__ import annotations

import base64
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Sequence

import hvac
import hvac.exceptions
import requests

from vault.domain import WrappedKey
from vault.errors import DecryptionFailed, KeyUnavailable, PdvError
from vault.keys.failover import FailoverAdapter, parse_addresses
from vault.secret import SecretBytes

_UNREACHABLE = "vault sealed or unreachable"
_REFUSED = "vault refused the key operation; check the token's policy"
_TRANSPORT_ERRORS = (
    requests.exceptions.ConnectionError,  # refused, reset, DNS
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,  # the server died mid-answer
)
_REJECTED = "vault rejected the key request; check the key name and the listener's JSON limits"
# check() encrypts this; its ciphertext is thrown away.
_PROBE = base64.b64encode(b"\0" * 32).decode("ascii")


# (operation, seconds, the domain error's class name or None): the metrics' view of each Vault call.
CallObserver = Callable[[str, float, "str | None"], None]


@contextmanager
def _observed(observe: CallObserver | None, operation: str) -> Iterator[None]:
    """Time one Vault call for `observe`, with the class of the domain error it ended in."""
    if observe is None:
        yield
        return
    started, error = time.perf_counter(), None
    try:
        yield
    except PdvError as exc:
        error = type(exc).__name__
        raise
    finally:
        observe(operation, time.perf_counter() - started, error)


def signing_key_name(key_name: str) -> str:
    """The ed25519 Transit key that signs shred receipts: the KEK's name + "-signing"."""
    return f"{key_name}-signing"


def make_client(
    addr: str | Sequence[str], token: str, timeout: float = 5.0, retry_seconds: float = 0.0
) -> hvac.Client:
    """An hvac client whose every call gives up on a node after `timeout` seconds (connect and
    read). `addr` may name several nodes (a list, or comma-separated): a call that one cannot
    serve moves to the next, for up to `retry_seconds` (vault/keys/failover.py)."""
    addresses = parse_addresses(addr)
    # Built by hvac itself, so every API object (sys, secrets.transit, auth) holds this adapter.
    adapter = functools.partial(FailoverAdapter, addresses, retry_seconds)
    return hvac.Client(url=addresses[0], token=token, timeout=timeout, adapter=adapter)  # type: ignore[arg-type]


class TransitKeyProvider:
    """Wraps DEKs with the Transit key `key_name` at `mount`, `batch_size` items per call."""

    def __init__(
        self, client: hvac.Client, mount: str, key_name: str, batch_size: int = 1000,
        observe: CallObserver | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._client = client
        self._observe = observe
        self._mount = mount.strip("/")
        self._key_name = key_name
        self._batch_size = batch_size
        self._encrypt_path = f"/v1/{self._mount}/encrypt/{key_name}"
        self._decrypt_path = f"/v1/{self._mount}/decrypt/{key_name}"
        self._rewrap_path = f"/v1/{self._mount}/rewrap/{key_name}"

    def __repr__(self) -> str:
        return f"TransitKeyProvider(mount={self._mount!r}, key_name={self._key_name!r})"

    def wrap_keys(self, keys: Sequence[SecretBytes]) -> list[WrappedKey]:
        """Encrypt each DEK under the KEK's current version, one Transit call per batch.

        Raises:
            KeyUnavailable: Vault is sealed, unreachable, too slow, or refused the call.
        """
        wrapped: list[WrappedKey] = []
        for start in range(0, len(keys), self._batch_size):
            batch = [
                {"plaintext": base64.b64encode(key.reveal()).decode("ascii")}
                for key in keys[start : start + self._batch_size]
            ]
            for item in self._post(self._encrypt_path, batch, decrypting=False):
                wrapped.append(WrappedKey(item["ciphertext"]))
        return wrapped

    def unwrap_keys(self, wrapped: Sequence[WrappedKey]) -> list[SecretBytes]:
        """Decrypt each wrapped DEK, in order, one Transit call per batch.

        Raises:
            KeyUnavailable: as for wrap_keys.
            DecryptionFailed: a wrapped key did not decrypt (tampered, or its KEK version is
                below min_decryption_version or trimmed).
        """
        keys: list[SecretBytes] = []
        for start in range(0, len(wrapped), self._batch_size):
            batch = [{"ciphertext": w.ciphertext} for w in wrapped[start : start + self._batch_size]]
            for item in self._post(self._decrypt_path, batch, decrypting=True):
                keys.append(SecretBytes(base64.b64decode(item["plaintext"])))
        return keys

    def latest_version(self) -> int:
        """The KEK version new wraps use, read off a throwaway wrap: the service token may
        encrypt but not read the key's metadata.

        Raises:
            KeyUnavailable: as for wrap_keys.
        """
        (item,) = self._post(self._encrypt_path, [{"plaintext": _PROBE}], decrypting=False)
        try:
            return WrappedKey(item["ciphertext"]).kek_version
        except (KeyError, TypeError, ValueError):
            raise KeyUnavailable("vault returned an unexpected response") from None

    def rewrap(self, wrapped: Sequence[WrappedKey]) -> list[WrappedKey | None]:
        """Re-encrypt each wrapped DEK under the KEK's latest version; None where Vault could not.

        Raises:
            KeyUnavailable: as for wrap_keys.
        """
        return rewrap_batches(self._client, self._rewrap_path, wrapped, self._batch_size, self._observe)

    def check(self) -> None:
        """Encrypt a throwaway value: proves reachable, unsealed, the key exists and may be used.

        Raises:
            KeyUnavailable: as for wrap_keys.
        """
        self._post(self._encrypt_path, [{"plaintext": _PROBE}], decrypting=False)

    def _post(
        self, path: str, batch: list[dict[str, str]], *, decrypting: bool
    ) -> list[dict[str, Any]]:
        """POST one batch_input and return its batch_results; every failure goes through _translate."""
        with _observed(self._observe, "decrypt" if decrypting else "encrypt"):
            return self._post_batch(path, batch, decrypting=decrypting)

    def _post_batch(
        self, path: str, batch: list[dict[str, str]], *, decrypting: bool
    ) -> list[dict[str, Any]]:
        failure: Exception | None = None
        try:
            response = self._client.adapter.post(path, json={"batch_input": batch})
        except (*_TRANSPORT_ERRORS, hvac.exceptions.VaultError) as e:
            failure = _translate(e, decrypting)
        if failure is not None:
            # Raised outside the except block so the hvac error is not kept as __context__:
            # its body can hold ciphertexts and, for a partly failed decrypt, the plaintext
            # DEKs of the items that succeeded.
            raise failure
        results = _batch_results(response)
        if len(results) != len(batch) or any(item.get("error") for item in results):
            raise DecryptionFailed() if decrypting else KeyUnavailable(_REJECTED)
        return results


def _translate(error: Exception, decrypting: bool) -> Exception:
    """The one mapping from hvac / requests errors to domain errors. Never copies a body."""
    if isinstance(error, _TRANSPORT_ERRORS):
        translated: Exception = KeyUnavailable(_UNREACHABLE)
        translated.__cause__ = error  # no body: only the address and the socket error
        return translated
    if isinstance(error, hvac.exceptions.VaultDown):
        return KeyUnavailable(_UNREACHABLE)
    if isinstance(error, (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized)):
        return KeyUnavailable(_REFUSED)
    if isinstance(error, hvac.exceptions.InvalidRequest):
        # Transit answers 400 with batch_results when items failed. A 400 without them is the
        # request itself refused (unknown key, listener JSON limits): a setup fault, and
        # calling it DecryptionFailed would make every stored DEK look tampered with.
        if decrypting and _has_batch_results(error.json):
            return DecryptionFailed()
        return KeyUnavailable(_REJECTED)
    return KeyUnavailable(f"vault failed the key operation ({type(error).__name__})")


def rewrap_batches(
    client: hvac.Client, path: str, wrapped: Sequence[WrappedKey], batch_size: int,
    observe: CallObserver | None = None,
) -> list[WrappedKey | None]:
    """Transit rewrap, `batch_size` items per call. An item Vault could not rewrap (tampered, or
    its version already retired) comes back as None, so one bad row cannot stall a rewrap."""
    out: list[WrappedKey | None] = []
    for start in range(0, len(wrapped), batch_size):
        batch = [{"ciphertext": w.ciphertext} for w in wrapped[start : start + batch_size]]
        with _observed(observe, "rewrap"):
            results = _rewrap_batch(client, path, batch)
        if len(results) != len(batch):
            raise KeyUnavailable("vault returned an unexpected response")
        out += [
            WrappedKey(item["ciphertext"]) if not item.get("error") and item.get("ciphertext") else None
            for item in results
        ]
    return out


def _rewrap_batch(client: hvac.Client, path: str, batch: list[dict[str, str]]) -> list[dict[str, Any]]:
    failure: Exception | None = None
    try:
        response = client.adapter.post(path, json={"batch_input": batch})
    except hvac.exceptions.InvalidRequest as e:
        # Every item failed: Transit answers 400 with the per-item errors. A rewrap answer
        # holds ciphertexts only, never a plaintext, so reading it is safe.
        if _has_batch_results(e.json):
            return e.json["data"]["batch_results"]
        failure = _translate(e, decrypting=False)
    except (*_TRANSPORT_ERRORS, hvac.exceptions.VaultError) as e:
        failure = _translate(e, decrypting=False)
    if failure is not None:
        raise failure
    return _batch_results(response)


def _has_batch_results(body: object) -> bool:
    return isinstance(body, dict) and isinstance(body.get("data"), dict) and (
        "batch_results" in body["data"]
    )


def _batch_results(response: object) -> list[dict[str, Any]]:
    if not _has_batch_results(response):
        # Not JSON, or not a batch answer: no body in the message.
        raise KeyUnavailable("vault returned an unexpected response")
    return response["data"]["batch_results"]  # type: ignore[index]


class TransitSigner:
    """Signs and verifies with an ed25519 Transit key (shred receipts). The key never leaves Vault."""

    def __init__(self, client: hvac.Client, mount: str, key_name: str, observe: CallObserver | None = None) -> None:
        self._client = client
        self._observe = observe
        self._sign_path = f"/v1/{mount.strip('/')}/sign/{key_name}"
        self._verify_path = f"/v1/{mount.strip('/')}/verify/{key_name}"

    def __repr__(self) -> str:
        return "TransitSigner()"

    def sign(self, payloads: Sequence[bytes]) -> list[str]:
        """Vault's signature text (`vault:vN:...`) over each payload, in batched calls.

        Raises:
            KeyUnavailable: Vault sealed, unreachable, or the token may not sign.
        """
        out: list[str] = []
        for start in range(0, len(payloads), 500):
            batch = [{"input": base64.b64encode(p).decode("ascii")} for p in payloads[start : start + 500]]
            results = self._call(self._sign_path, {"batch_input": batch}).get("batch_results")  # type: ignore[dict-item]
            if not isinstance(results, list) or len(results) != len(batch) or any(r.get("error") for r in results):
                raise KeyUnavailable(_REJECTED)
            out += [str(r["signature"]) for r in results]
        return out

    def verify(self, payload: bytes, signature: str) -> bool:
        """True only if `signature` is this key's signature over `payload`."""
        body = {"input": base64.b64encode(payload).decode("ascii"), "signature": signature}
        data = self._call(self._verify_path, body, malformed_is_invalid=True)
        return data.get("valid") is True

    def _call(self, path: str, body: dict[str, Any], malformed_is_invalid: bool = False) -> dict[str, Any]:
        with _observed(self._observe, "sign" if path == self._sign_path else "verify"):
            return self._post(path, body, malformed_is_invalid)

    def _post(self, path: str, body: dict[str, Any], malformed_is_invalid: bool) -> dict[str, Any]:
        failure: Exception | None = None
        try:
            response = self._client.adapter.post(path, json=body)
        except hvac.exceptions.InvalidRequest as e:
            if malformed_is_invalid:
                return {"valid": False}  # Vault refuses a malformed signature: it is simply not valid
            failure = _translate(e, decrypting=False)
        except (*_TRANSPORT_ERRORS, hvac.exceptions.VaultError) as e:
            failure = _translate(e, decrypting=False)
        if failure is not None:
            raise failure
        if not isinstance(response, dict) or not isinstance(response.get("data"), dict):
            raise KeyUnavailable("vault returned an unexpected response")
        return response["data"]
