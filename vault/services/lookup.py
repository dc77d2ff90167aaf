"""Lookup: find the tokens holding a value, through the field's blind index."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime

from vault.catalog import Catalog
from vault.crypto.index import blind_index
from vault.errors import InvalidInput, PdvError
from vault.services.common import Caller, Limits, access_row, require_batch, require_label
from vault.services.group_commit import GroupCommitter
from vault.services.index_keys import IndexKeys
from vault.storage.store import Tx


@dataclass(frozen=True)
class LookupQuery:
    field: str
    value: str = dc_field(repr=False)


class LookupService:
    def __init__(
        self, committer: GroupCommitter, index_keys: IndexKeys, catalog: Catalog, limits: Limits,
        clock: Callable[[], datetime],
    ) -> None:
        self.committer, self.index_keys = committer, index_keys
        self.catalog, self.limits, self.clock = catalog, limits, clock

    def lookup(self, caller: Caller, purpose: str, queries: list[LookupQuery]) -> list[list[tuple[str, str]]]:
        """Per query, the (subject id, token) pairs whose value equals it after normalization.

        Raises:
            InvalidInput: missing purpose, batch too large, unknown or unsearchable field, invalid value.
        """
        require_label("purpose", purpose)
        require_batch("queries", len(queries), self.limits)
        keys = [self._index_key(i, q) for i, q in enumerate(queries)]
        now = self.clock()
        return self.committer.run(lambda tx: self._find(tx, caller, purpose, keys, now))

    @staticmethod
    def _find(tx: Tx, caller: Caller, purpose: str, keys: list[tuple[str, bytes]], now: datetime) -> list[list[tuple[str, str]]]:
        """Inside the shared transaction: the matches, logged before they leave."""
        found: dict[tuple[str, bytes], list[tuple[str, str]]] = {}
        for match in tx.find_by_index(sorted(set(keys))):
            found.setdefault((match.field, match.blind_index), []).append((match.subject_id, match.token))
        results = [found.get(k, []) for k in keys]
        log = []
        for (field_name, _), matches in zip(keys, results):
            log += [access_row(now, caller, "lookup", purpose, "ok", s, field_name, t) for s, t in matches]
            if not matches:
                log.append(access_row(now, caller, "lookup", purpose, "not_found", field=field_name))
        tx.log_access(log)
        return results

    def _index_key(self, index: int, query: LookupQuery) -> tuple[str, bytes]:
        try:
            spec = self.catalog.field(query.field)
            if not spec.searchable:
                raise InvalidInput(f"field {query.field!r} is not searchable")
            if len(query.value.encode()) > self.limits.max_value_bytes:
                raise InvalidInput(f"value is larger than {self.limits.max_value_bytes} bytes")
            return spec.name, blind_index(self.index_keys.index_key(spec.name), spec.normalize(query.value))
        except PdvError as exc:
            raise InvalidInput(f"queries[{index}]: {exc}") from None
