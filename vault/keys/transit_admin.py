"""KeyAdmin on Vault / OpenBao Transit: rotate, rewrap, raise minimum versions, trim.

Runs with an admin token (deploy/openbao/pdv-admin.hcl grants exactly these calls). Errors go
through transit.py's one translation, so an hvac error body never reaches a message.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

import hvac
import hvac.exceptions

from vault.domain import WrappedKey
from vault.errors import KeyUnavailable
from vault.keys.admin import KekVersions
from vault.keys.transit import _TRANSPORT_ERRORS, _translate, rewrap_batches

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
                auto_rotate_period=timedelta(seconds=int(data.get("auto_rotate_period") or 0)) or None,
            )
        except (KeyError, TypeError, ValueError):
            raise KeyUnavailable(_UNEXPECTED) from None

    def rotate(self) -> int:
        self._call("POST", f"{self._key_path}/rotate")
        return self.versions().latest

    def latest_version(self) -> int:
        return self.versions().latest

    def rewrap(self, wrapped: Sequence[WrappedKey]) -> list[WrappedKey | None]:
        return rewrap_batches(self._client, self._rewrap_path, wrapped, self._batch_size)

    def set_min_versions(self, min_decryption: int, min_encryption: int) -> None:
        self._call(
            "POST", f"{self._key_path}/config",
            {"min_decryption_version": min_decryption, "min_encryption_version": min_encryption},
        )

    def trim(self, min_available: int) -> None:
        self._call("POST", f"{self._key_path}/trim", {"min_available_version": min_available})

    def set_auto_rotate(self, period: timedelta | None) -> None:
        seconds = int(period.total_seconds()) if period else 0
        self._call("POST", f"{self._key_path}/config", {"auto_rotate_period": f"{seconds}s"})

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
