"""KeyAdmin on Vault / OpenBao Transit: rotate, rewrap, raise minimum versions, trim.

Runs with an admin token (deploy/openbao/pdv-admin.hcl grants exactly these calls). Errors go
through transit.py's one translation, so an hvac error body never reaches a message.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

import hvac
import hvac.exceptions

from vault.domain import WrappedKey
from vault.errors import KeyUnavailable
from vault.keys.admin import KekVersions
from vault.keys.transit import _TRANSPORT_ERRORS, _has_batch_results, _translate

_UNEXPECTED = "vault returned an unexpected response"


class TransitKeyAdmin:
    """Manages the Transit key `key_name` at `mount`; rewraps `batch_size` DEKs per call."""

    def __init__(self, client: hvac.Client, mount: str, key_name: str, batch_size: int = 1000) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._client = client
        mount = mount.strip("/")
        self._key_path = f"/v1/{mount}/keys/{key_name}"
        self._rewrap_path = f"/v1/{mount}/rewrap/{key_name}"
        self._batch_size = batch_size
        self.name = f"{mount}/{key_name}"

    def __repr__(self) -> str:
        return f"TransitKeyAdmin({self.name!r})"

    def versions(self) -> KekVersions:
        data = self._call("GET", self._key_path)
        try:
            return KekVersions(
                latest=int(data["latest_version"]),
                min_decryption=int(data["min_decryption_version"]),
                min_encryption=int(data.get("min_encryption_version") or 0),
                min_available=int(data.get("min_available_version") or 0),
                created={int(v): _timestamp(t) for v, t in data["keys"].items()},
            )
        except (KeyError, TypeError, ValueError):
            raise KeyUnavailable(_UNEXPECTED) from None

    def rotate(self) -> int:
        self._call("POST", f"{self._key_path}/rotate")
        return self.versions().latest

    def rewrap(self, wrapped: Sequence[WrappedKey]) -> list[WrappedKey | None]:
        out: list[WrappedKey | None] = []
        for start in range(0, len(wrapped), self._batch_size):
            batch = [{"ciphertext": w.ciphertext} for w in wrapped[start : start + self._batch_size]]
            results = self._rewrap_batch(batch)
            if len(results) != len(batch):
                raise KeyUnavailable(_UNEXPECTED)
            out += [
                WrappedKey(item["ciphertext"]) if not item.get("error") and item.get("ciphertext") else None
                for item in results
            ]
        return out

    def set_min_versions(self, min_decryption: int, min_encryption: int) -> None:
        self._call(
            "POST", f"{self._key_path}/config",
            {"min_decryption_version": min_decryption, "min_encryption_version": min_encryption},
        )

    def trim(self, min_available: int) -> None:
        self._call("POST", f"{self._key_path}/trim", {"min_available_version": min_available})

    def _rewrap_batch(self, batch: list[dict[str, str]]) -> list[dict[str, Any]]:
        failure: Exception | None = None
        try:
            response = self._client.adapter.post(self._rewrap_path, json={"batch_input": batch})
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
        if not _has_batch_results(response):
            raise KeyUnavailable(_UNEXPECTED)
        return response["data"]["batch_results"]  # type: ignore[index]

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        failure: Exception | None = None
        try:
            if method == "GET":
                response = self._client.adapter.get(path)
            else:
                response = self._client.adapter.post(path, json=body or {})
        except (*_TRANSPORT_ERRORS, hvac.exceptions.VaultError) as e:
            failure = _translate(e, decrypting=False)
        if failure is not None:
            raise failure
        if isinstance(response, dict):
            data = response.get("data")
            return data if isinstance(data, dict) else {}
        return {}  # 204 No Content: rotate, config and trim may answer with no body


def _timestamp(value: object) -> datetime:
    # OpenBao reports symmetric key versions as Unix seconds; RFC 3339 text is accepted too.
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc)
