"""Lookup: find the tokens holding a value, through the field's blind index.

The caller needs `lookup` on each queried field for the purpose; otherwise the whole call
is refused (PERMISSION_DENIED naming the query, a fact about the caller, not the data) and
the refusal logged. Matches whose value was collected for an incompatible purpose, or
whose subject opted out of the purpose, are left out, exactly as if absent, and logged.
Each stored row is judged and logged on its own, against its own subject: a value several
subjects share (a deterministic field) gives one match per subject whose row may be read,
each with the same token.

Blind indexes are keyed per token domain (vault/services/domains): a query is hashed under
the caller's domain's key, so it finds only values whose tokens were issued in that domain,
never a subject through another domain's tokens. Each subject a lookup answers with goes in
the token issuance ledger (vault/storage/holders.py), in the transaction of the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime

from vault.catalog import Catalog
from vault.crypto.index import blind_index
from vault.errors import InvalidInput, PdvError, PermissionDenied
from vault.policy import LOOKUP
from vault.services.access import DENIED, AccessControl
from vault.services.common import (
    MAX_PURPOSE, MAX_REQUEST_ID, Caller, Limits, access_row, refusals_logged, require_batch, require_label,
)
from vault.services.group_commit import GroupCommitter
from vault.services.index_keys import IndexKeys
from vault.storage.rows import IndexMatch
from vault.storage.store import Tx


@dataclass(frozen=True)
class LookupQuery:
    field: str
    value: str = dc_field(repr=False)


class LookupService:
    def __init__(
        self, committer: GroupCommitter, index_keys: IndexKeys, catalog: Catalog, limits: Limits,
        clock: Callable[[], datetime], access: AccessControl,
    ) -> None:
        self.committer, self.index_keys = committer, index_keys
        self.catalog, self.limits, self.clock, self.access = catalog, limits, clock, access

    def lookup(self, caller: Caller, purpose: str, queries: list[LookupQuery]) -> list[list[tuple[str, str]]]:
        """Per query, the (subject id, token) pairs whose value equals it after normalization.

        Raises:
            InvalidInput: missing or undeclared purpose (the message lists the declared ones), batch too
                large, unknown or unsearchable field, invalid value.
            PermissionDenied: a query's field may not be looked up for the purpose (logged).
            RateLimited: the principal's rate is exceeded; nothing was searched.
        """
        now = self.clock()
        with refusals_logged(self.committer.run, now, caller, "lookup", purpose):
            require_label("request_id", caller.request_id, MAX_REQUEST_ID)
            require_label("purpose", purpose, MAX_PURPOSE)
        self.access.require_purpose(self.committer, caller, "lookup", purpose, now)
        with refusals_logged(self.committer.run, now, caller, "lookup", purpose):
            require_batch("queries", len(queries), self.limits)
            domain = self.access.policy.domain_of(caller.principal)
            keys = [self._index_key(i, q, domain) for i, q in enumerate(queries)]
        self.access.limiter.spend(caller.principal, len(queries))
        refused = {f for f in {f for f, _ in keys} if not self.access.allows(caller.principal, LOOKUP, f, purpose)}
        denied = [i for i, (f, _) in enumerate(keys) if f in refused]
        if denied:
            rows = [access_row(now, caller, "lookup", purpose, DENIED, field=keys[i][0]) for i in denied]
            self.committer.run(lambda tx: tx.log_access(rows))
            raise PermissionDenied(f"queries[{denied[0]}]: not permitted to look up field "
                                   f"{keys[denied[0]][0]!r} for purpose {purpose!r}")
        return self.committer.run(lambda tx: self._find(tx, caller, purpose, keys, now, domain))

    def _find(
        self, tx: Tx, caller: Caller, purpose: str, keys: list[tuple[str, bytes]], now: datetime, domain: str
    ) -> list[list[tuple[str, str]]]:
        """Inside the shared transaction: the matches, logged (and their subjects' holder noted) before they leave."""
        found: dict[tuple[str, bytes], list[IndexMatch]] = {}
        for match in tx.find_by_index(sorted(set(keys)), purpose):
            found.setdefault((match.field, match.blind_index), []).append(match)
        results, log = [], []
        head = (now, caller.request_id, caller.principal, "lookup", purpose)  # ACCESS_COLUMNS order
        refusals: dict[tuple[str, bool], str | None] = {}  # (collection purpose, opted out): asked once a call
        for field_name, index in keys:
            kept = []
            for match in found.get((field_name, index), ()):
                s, t = match.subject_id, match.token
                key = (match.purpose, match.opted_out)
                if key in refusals:
                    refusal = refusals[key]
                else:
                    refusal = refusals[key] = self.access.refusal(purpose, match.purpose, match.opted_out)
                log.append(head + (s, field_name, t, refusal or "ok"))
                if refusal is None:
                    kept.append((s, t))
            if not kept:
                log.append(head + (None, field_name, None, "not_found"))
            results.append(kept)
        tx.log_access(log)
        tx.record_holders({(s, domain, caller.principal) for kept in results for s, _ in kept}, now)
        return results

    def _index_key(self, index: int, query: LookupQuery, domain: str) -> tuple[str, bytes]:
        try:
            spec = self.catalog.field(query.field)
            if not spec.searchable:
                raise InvalidInput(f"field {query.field!r} is not searchable")
            if len(query.value.encode()) > self.limits.max_value_bytes:
                raise InvalidInput(f"value is larger than {self.limits.max_value_bytes} bytes")
            return spec.name, blind_index(self.index_keys.index_key(spec.name, domain), spec.normalize(query.value))
        except PdvError as exc:
            raise InvalidInput(f"queries[{index}]: {exc}", f"queries[{index}]") from None
