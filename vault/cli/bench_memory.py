"""Stand-ins for the database and for Vault, for `pdv bench --profile` only.

The instruction count measures PDV's own per-field code, so it runs the real services
over these: a store that keeps rows in dictionaries and a key provider that keeps DEKs in
memory. Both sit above the ports (vault.storage.store.Tx and vault.keys.provider), answer
what the services ask in the shapes the real ones return (ValueRow, KeyRow, IndexMatch),
and hold nothing past the process. Nothing here is used when serving.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from vault.domain import WrappedKey
from vault.secret import SecretBytes
from vault.storage.rows import VALUE_COLUMNS, IndexMatch, KeyRow, ValueRow
from vault.storage.store import check_matches

_LOCATOR = VALUE_COLUMNS.index("locator")  # token_check follows it


class MemoryKek:
    """A KeyProvider whose wrapped text is only a name for a DEK it holds (no secret in it)."""

    def __init__(self) -> None:
        self._held: dict[str, SecretBytes] = {}
        self._names = itertools.count(1)

    def wrap_keys(self, keys: Sequence[SecretBytes]) -> list[WrappedKey]:
        out = []
        for key in keys:
            name = f"vault:v1:held-{next(self._names)}"
            self._held[name] = key
            out.append(WrappedKey(name))
        return out

    def unwrap_keys(self, wrapped: Sequence[WrappedKey]) -> list[SecretBytes]:
        return [self._held[w.ciphertext] for w in wrapped]

    def check(self) -> None:
        return None


class MemoryStore:
    """The rows a tokenize writes and a detokenize or lookup reads, in dictionaries."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, int], list] = {}  # (subject, version) -> [wrapped, encryptions]
        self.values: dict[str, list[tuple]] = {}  # token -> VALUE_COLUMNS tuples, oldest first (no locator)
        self.located: dict[int, tuple] = {}  # locator -> the VALUE_COLUMNS tuple of a sequential token
        self.next_locator = 1
        self.index: dict[tuple[str, bytes], list[tuple]] = {}  # (field, blind index) -> value tuples
        self.reserved: set[tuple[str, str]] = set()
        self.requests: dict[tuple[str, str], tuple] = {}
        self.log: list[tuple] = []
        self.holders: dict[tuple[str, str, str], datetime] = {}  # the issuance ledger

    def reserve_block(self, size: int) -> int:
        """`size` locators of sequential tokens, as vault.storage.locators reserves them."""
        first, self.next_locator = self.next_locator, self.next_locator + size
        return first

    @contextmanager
    def transaction(self) -> Iterator["MemoryTx"]:
        yield MemoryTx(self)

    snapshot = transaction


class MemoryTx:
    """The Tx methods the data paths call, over a MemoryStore."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def get_request(self, principal: str, request_id: str) -> tuple | None:
        return self.store.requests.get((principal, request_id))

    def reserve_tokens(self, rows: Sequence[tuple[str, str]]) -> None:
        self.store.reserved.update(rows)

    def taken_tokens(self, field: str, tokens: Sequence[str]) -> set[str]:
        return {t for t in tokens if (field, t) in self.store.reserved}

    def existing_values(self, keys: Sequence[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        values = self.store.values
        return {k for k in keys if any(v[1] == k[1] and v[0] == k[2] for v in values.get(k[0], ()))}

    def count_encryptions(self, counts: Iterable[tuple[str, int, int]]) -> None:
        for subject_id, version, n in counts:
            self.store.keys[(subject_id, version)][1] += n

    def current_keys(self, subject_ids: Sequence[str]) -> dict[str, KeyRow]:
        newest: dict[str, KeyRow] = {}
        for (subject_id, version), (wrapped, count) in self.store.keys.items():
            if subject_id in subject_ids and (subject_id not in newest or newest[subject_id].version < version):
                newest[subject_id] = KeyRow(subject_id, version, wrapped, count)
        return newest

    def queue_tokenized(self, subjects: Sequence[tuple], keys: Sequence[tuple], values: Sequence[tuple],
                        request: tuple | None, records: Sequence[tuple[int, str, str]]) -> None:
        store = self.store
        for subject_id, version, wrapped, _kek, encryptions, _at in keys:
            store.keys[(subject_id, version)] = [wrapped, encryptions]
        for row in values:
            if row[_LOCATOR] is None:
                store.values.setdefault(row[2], []).append(row)
            else:
                store.located[row[_LOCATOR]] = row
            if row[5] is not None:
                store.index.setdefault((row[1], row[5]), []).append(row)
        if request is not None:
            principal, request_id, fingerprint, answer, _at = request
            store.requests[(principal, request_id)] = (fingerprint, answer, list(records))

    def values_for_tokens(self, tokens: Sequence[str], access_purpose: str = "", domain: str | None = None,
                          located: Sequence[tuple[int, bytes]] = ()) -> list[ValueRow]:
        keys, out = self.store.keys, []
        rows = [v for token in tokens for v in self.store.values.get(token, ())]
        for locator, check in located:
            v = self.store.located.get(locator)
            if v is not None and check_matches([check], v[_LOCATOR + 1]):
                rows.append(v)
        for v in rows:
            key = keys.get((v[0], v[3]))
            if key is not None and (domain is None or v[12] == domain):
                out.append(ValueRow(v[2], v[1], v[0], v[3], v[4], key[0], v[6], False))
        return out

    def find_by_index(self, keys: Sequence[tuple[str, bytes]], access_purpose: str = "") -> list[IndexMatch]:
        out = []
        for field, index in keys:
            out += [IndexMatch(v[1], v[5], v[0], v[2], v[6], False) for v in self.store.index.get((field, index), ())]
        return out

    def log_access(self, rows: Sequence[tuple]) -> None:
        self.store.log.extend(rows)

    def record_holders(self, rows: Iterable[tuple[str, str, str]], at: datetime, new_subjects: bool = False) -> None:
        self.store.holders.update((row, at) for row in rows)

