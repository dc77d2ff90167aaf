"""The rows a transaction's tokenizes add, written at its commit with one insert per table.

Group commit runs many small tokenizes in one transaction. Each inserting its few rows
into five tables on its own cost PostgreSQL a round trip per table per tokenize (two for
COPY), one after another while the transaction is open. Queued here, they go in with one
insert per table, parents first, just before the access log (Tx.write_queued). What a
later unit of the same transaction asks of them (a retried request id, a deterministic
value already added) is answered from the queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

_EPSILON = timedelta(microseconds=1)
StoredRequest = tuple[bytes, str, list[tuple[int, str, str]]]  # fingerprint, answer JSON, records


class InsertQueue:
    def __init__(self) -> None:
        # Tuples in the column orders of vault.storage.rows.
        self.subjects: list[tuple] = []
        self.keys: list[tuple] = []
        self.values: list[tuple] = []
        self.requests: list[tuple] = []
        self.records: list[tuple] = []
        # (subject, domain, principal) -> (issued at, whether the subject is new in this transaction)
        self.holders: dict[tuple[str, str, str], tuple[datetime, bool]] = {}
        self._answers: dict[tuple[str, str], StoredRequest] = {}
        self._value_keys: set[tuple[str, str, str]] = set()  # (token, field, subject id)

    def add_tokenized(
        self, subjects: Sequence[tuple], keys: Sequence[tuple], values: Sequence[tuple],
        request: tuple[str, str, bytes, str, datetime] | None, records: Sequence[tuple[int, str, str]],
    ) -> None:
        """Queue one tokenize's rows (`request`: principal, request id, fingerprint, answer JSON,
        time; `records`: position, subject id, tokens JSON). A tokenize sent without a request
        id has nothing to answer a retry under: `request` is None and no answer is kept."""
        self.subjects += subjects
        self.keys += keys
        self.values += values
        self._value_keys.update((row[2], row[1], row[0]) for row in values)
        if request is None:
            return
        principal, request_id, fingerprint, response, _ = request
        self.requests.append(request)
        self.records += [(principal, request_id, *r) for r in records]
        self._answers[(principal, request_id)] = (fingerprint, response, list(records))

    def add_holders(self, rows: Iterable[tuple[str, str, str]], at: datetime, new_subjects: bool = False) -> None:
        """Queue issuance-ledger rows (subject, domain, principal); the latest time of each is kept.
        `new_subjects`: the subjects are created in this transaction (their rows need no check)."""
        for key in rows:
            earlier, new = self.holders.get(key, (at - _EPSILON, False))
            self.holders[key] = (max(at, earlier), new or new_subjects)

    def answer(self, principal: str, request_id: str) -> StoredRequest | None:
        """The queued tokenize answer under this request id, if a unit of this transaction made one."""
        return self._answers.get((principal, request_id))

    def queued_values(self, keys: Sequence[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        """Which (token, field, subject id) of `keys` are queued."""
        return self._value_keys.intersection(keys)
