"""Detokenize: resolve tokens to values, logging every item before any plaintext leaves.

Reads and decryption happen on a snapshot, outside the write lock; the access log is
then written by group commit in a transaction that first re-checks each data key
still exists, so a value shredded in between is answered as not found.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime

from vault.catalog import Catalog, TokenKind
from vault.crypto import tokens as tk
from vault.crypto.aead import row_aad
from vault.errors import DecryptionFailed, InvalidInput, KeyUnavailable, NotFound, PdvError, UnknownField
from vault.services.common import Caller, Limits, access_row, require_batch, require_label
from vault.services.group_commit import GroupCommitter
from vault.services.keyring import KeyRing
from vault.storage.store import Store, Tx, ValueRow

# One message for every miss, whatever the reason: no existence oracle.
NOT_FOUND = "token not found"


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
        self, store: Store, committer: GroupCommitter, keyring: KeyRing, catalog: Catalog, limits: Limits,
        clock: Callable[[], datetime],
    ) -> None:
        self.store, self.committer, self.keyring = store, committer, keyring
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
        with self.store.snapshot() as tx:
            rows = _first_row_per_item(items, tx.values_for_tokens(sorted({it.token for it in items})))
        try:
            keys = self.keyring.data_keys({(r.subject_id, r.key_version): r.wrapped for r in rows if r})
        except KeyUnavailable:
            self._log_failure(caller, purpose, items, now)
            raise
        results = [self._open(item, row, keys) for item, row in zip(items, rows)]

        def record(tx: Tx) -> list[Detokenized]:
            live = tx.live_keys((r.subject_id, r.key_version) for r in rows if r)
            final = [
                res if row is None or (row.subject_id, row.key_version) in live else _missing(item)
                for item, row, res in zip(items, rows, results)
            ]
            tx.log_access([
                access_row(now, caller, "detokenize", purpose, _outcome(res), row.subject_id if row else None,
                           res.field or item.field or None, item.token)
                for item, row, res in zip(items, rows, final)
            ])
            return final

        return self.committer.run(record)

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

    @staticmethod
    def _open(item: DetokenizeItem, row: ValueRow | None, keys: dict) -> Detokenized:
        if row is None:
            return _missing(item)
        data_key = keys[(row.subject_id, row.key_version)]
        try:
            plain = data_key.open(row.ciphertext, row_aad(row.subject_id, row.field, row.token, row.key_version))
        except DecryptionFailed as exc:
            return Detokenized(item.token, row.field, error=exc)
        return Detokenized(item.token, row.field, plain.decode())

    def _log_failure(self, caller: Caller, purpose: str, items: list[DetokenizeItem], now: datetime) -> None:
        try:
            self.committer.run(lambda tx: tx.log_access([
                access_row(now, caller, "detokenize", purpose, "unavailable", field=it.field or None, token=it.token)
                for it in items
            ]))
        except PdvError:
            pass  # the request fails either way; the operational log says why


def _missing(item: DetokenizeItem) -> Detokenized:
    return Detokenized(item.token, error=NotFound(NOT_FOUND))


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
