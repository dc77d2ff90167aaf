"""Detokenize: resolve tokens to values, logging every item before any plaintext leaves.

Each call is one unit of a group-committed transaction that reads the values with
their data-key rows, decrypts with cached DEKs and appends the access log, so the
log commits before the answer leaves and a shredded key is never used. When a DEK
is not cached, the unit stops without writing, the DEK is unwrapped by Vault outside
any transaction, and the unit runs again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime

from vault.catalog import Catalog, TokenKind
from vault.crypto import tokens as tk
from vault.crypto.aead import DataKey, row_aad
from vault.errors import DecryptionFailed, InvalidInput, KeyUnavailable, NotFound, PdvError, Unavailable, UnknownField
from vault.services.common import Caller, Limits, access_row, require_batch, require_label
from vault.services.group_commit import GroupCommitter
from vault.services.keyring import KeyId, KeyRing
from vault.storage.store import Tx, ValueRow

# One message for every miss, whatever the reason: no existence oracle.
NOT_FOUND = "token not found"
# Unwrap-and-retry rounds before giving up (a key can fall out of the cache in between).
ROUNDS = 3


@dataclass(frozen=True)
class DetokenizeItem:
    token: str
    field: str = ""


@dataclass(frozen=True)
class Detokenized:
    token: str
    field: str = ""
    value: str = dc_field(default="", repr=False)
    error: PdvError | None = None


class DetokenizeService:
    def __init__(
        self, committer: GroupCommitter, keyring: KeyRing, catalog: Catalog, limits: Limits,
        clock: Callable[[], datetime],
    ) -> None:
        self.committer, self.keyring = committer, keyring
        self.catalog, self.limits, self.clock = catalog, limits, clock

    def detokenize(self, caller: Caller, purpose: str, items: list[DetokenizeItem]) -> list[Detokenized]:
        """The value behind each token, in order; a miss is a per-item NotFound.

        Raises:
            InvalidInput: missing purpose, batch too large, a malformed token or unknown field (named by index).
            KeyUnavailable, StoreUnavailable: nothing is returned; the attempt is logged if the log can be.
        """
        require_label("purpose", purpose)
        require_batch("items", len(items), self.limits)
        for i, item in enumerate(items):
            self._check_syntax(i, item)
        now = self.clock()
        tokens = sorted({it.token for it in items})
        for _ in range(ROUNDS):
            answer = self.committer.run(lambda tx: self._resolve(tx, caller, purpose, items, tokens, now))
            if isinstance(answer, list):
                return answer
            try:
                self.keyring.data_keys(answer)  # unwrap what was missing, outside any transaction
            except KeyUnavailable:
                self._log_failure(caller, purpose, items, now)
                raise
        raise Unavailable("data keys keep expiring from the cache; retry")

    def _resolve(
        self, tx: Tx, caller: Caller, purpose: str, items: list[DetokenizeItem], tokens: list[str], now: datetime
    ) -> list[Detokenized] | dict[KeyId, str]:
        """Inside the shared transaction: the results (logged), or the wrapped DEKs still needed."""
        rows = _first_row_per_item(items, tx.values_for_tokens(tokens))
        wanted = {(r.subject_id, r.key_version): r.wrapped for r in rows if r}
        keys, missing = self.keyring.cached(wanted)
        if missing:
            return {key_id: wanted[key_id] for key_id in missing}
        results = [_open(item, row, keys) for item, row in zip(items, rows)]
        tx.log_access([
            access_row(now, caller, "detokenize", purpose, _outcome(res), row.subject_id if row else None,
                       res.field or item.field or None, item.token)
            for item, row, res in zip(items, rows, results)
        ])
        return results

    def _check_syntax(self, index: int, item: DetokenizeItem) -> None:
        """Strict token syntax before any lookup; the token itself is never echoed."""
        spec = None
        if item.field:
            try:
                spec = self.catalog.field(item.field)
            except UnknownField as exc:
                raise InvalidInput(f"items[{index}]: {exc}") from None
        if tk.is_opaque_token(item.token):
            return
        if spec is None:
            if tk.is_plausible_format_preserving(item.token):
                raise InvalidInput(f"items[{index}]: a format-preserving token needs its field")
            raise InvalidInput(f"items[{index}]: malformed token")
        if spec.token_kind is not TokenKind.FORMAT_PRESERVING or not tk.is_plausible_format_preserving(item.token):
            raise InvalidInput(f"items[{index}]: malformed token")
        # A format-preserving token is drawn from its field's alphabet; anything else (a name or an
        # email sent by mistake) is refused here, before it could be looked up or written to the access log.
        if not set(item.token) <= set(spec.format_alphabet or "") or (
            spec.max_length is not None and len(item.token) > spec.max_length
        ):
            raise InvalidInput(f"items[{index}]: malformed token")

    def _log_failure(self, caller: Caller, purpose: str, items: list[DetokenizeItem], now: datetime) -> None:
        try:
            self.committer.run(lambda tx: tx.log_access([
                access_row(now, caller, "detokenize", purpose, "unavailable", field=it.field or None, token=it.token)
                for it in items
            ]))
        except PdvError:
            pass  # the request fails either way; the operational log says why


def _open(item: DetokenizeItem, row: ValueRow | None, keys: dict[KeyId, DataKey]) -> Detokenized:
    if row is None:
        return Detokenized(item.token, error=NotFound(NOT_FOUND))
    data_key = keys[(row.subject_id, row.key_version)]
    try:
        plain = data_key.open(row.ciphertext, row_aad(row.subject_id, row.field, row.token, row.key_version))
    except DecryptionFailed as exc:
        return Detokenized(item.token, row.field, error=exc)
    return Detokenized(item.token, row.field, plain.decode())


def _first_row_per_item(items: list[DetokenizeItem], rows: list[ValueRow]) -> list[ValueRow | None]:
    """Match rows to items: the oldest row with the token (and field, if the item names one)."""
    by_token: dict[str, list[ValueRow]] = {}
    for row in rows:
        by_token.setdefault(row.token, []).append(row)
    out: list[ValueRow | None] = []
    for item in items:
        candidates = by_token.get(item.token, ())
        out.append(next((r for r in candidates if not item.field or r.field == item.field), None))
    return out


def _outcome(result: Detokenized) -> str:
    if result.error is None:
        return "ok"
    return "not_found" if isinstance(result.error, NotFound) else "decryption_failed"
