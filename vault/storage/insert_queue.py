"""The rows a transaction's tokenizes add, written at its commit with one insert per table.

Group commit runs many small tokenizes in one transaction. Each inserting its few rows
into five tables on its own cost PostgreSQL a round trip per table per tokenize (two for
COPY), one after another while the transaction is open. Queued here, they go in with one
insert per table, in foreign-key order, just before the access log. What a later unit of
the same transaction asks of them (a retried request id, a deterministic value already
added) is answered from the queue.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from vault.storage.rows import KEY_COLUMNS, RECORD_COLUMNS, REQUEST_COLUMNS, SUBJECT_COLUMNS, VALUE_COLUMNS

# Table, its columns, and the positions of its datetimes; parents before children.
TABLES: tuple[tuple[str, tuple[str, ...], tuple[int, ...]], ...] = (
    ("subjects", SUBJECT_COLUMNS, (1,)),
    ("data_keys", KEY_COLUMNS, (5,)),
    ("field_values", VALUE_COLUMNS, (9, 10)),
    ("tokenize_requests", REQUEST_COLUMNS, (4,)),
    ("request_records", RECORD_COLUMNS, ()),
)
StoredRequest = tuple[bytes, str, list[tuple[int, str, str]]]  # fingerprint, answer JSON, records


class InsertQueue:
    def __init__(self) -> None:
        self._rows: dict[str, list[tuple]] = {name: [] for name, _, _ in TABLES}
        self._requests: dict[tuple[str, str], StoredRequest] = {}
        self._values: set[tuple[str, str, str]] = set()  # (token, field, subject id)

    def add_tokenized(
        self, subjects: Sequence[tuple], keys: Sequence[tuple], values: Sequence[tuple],
        request: tuple[str, str, bytes, str, datetime], records: Sequence[tuple[int, str, str]],
    ) -> None:
        """Queue one tokenize's rows (tuples in the rows module's column orders; `request` is
        principal, request id, fingerprint, answer JSON, time; `records` position, subject id, tokens JSON)."""
        principal, request_id, fingerprint, response, _ = request
        self._rows["subjects"] += subjects
        self._rows["data_keys"] += keys
        self._rows["field_values"] += values
        self._rows["tokenize_requests"].append(request)
        self._rows["request_records"] += [(principal, request_id, *r) for r in records]
        self._requests[(principal, request_id)] = (fingerprint, response, list(records))
        self._values.update((row[2], row[1], row[0]) for row in values)

    def request(self, principal: str, request_id: str) -> StoredRequest | None:
        """A queued tokenize answer under this request id, if a unit of this transaction made one."""
        return self._requests.get((principal, request_id))

    def queued_values(self, keys: Sequence[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        """Which (token, field, subject id) of `keys` are queued."""
        return self._values.intersection(keys)

    def drain(self) -> Iterator[tuple[str, tuple[str, ...], list[tuple], tuple[int, ...]]]:
        """(table, columns, rows, datetime positions) of every table with rows, parents first; empties the queue."""
        for name, columns, times in TABLES:
            rows, self._rows[name] = self._rows[name], []
            if rows:
                yield name, columns, rows, times
        self._requests.clear()
        self._values.clear()
