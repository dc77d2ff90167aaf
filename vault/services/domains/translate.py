"""Translate: convert tokens of another token domain into tokens of the caller's own.

A token is valid only in the domain it was issued in. A city-internal hub that receives a
partner's token, or a partner that must read a value collected in another domain, asks for
the token of the same value in its own domain. The caller needs `translate` on the field for
the purpose (refused like Detokenize: with no translate grant for the purpose at all, every
item is PERMISSION_DENIED whatever the token; a field not granted, a collection purpose the
purpose is incompatible with, or an opt-out answer like an unknown token). A token the named
domain never issued, or that was shredded, is NOT_FOUND "token not found".

What the caller gets is a token of its own domain for the same subject's value:
- the token it already holds, if the subject has that value in the caller's domain (the
  comparison is made on the decrypted values, inside PDV), so translating twice, or
  translating what the caller once tokenized itself, gives the same token;
- else a new value row in the caller's domain: the same value, collection purpose, source,
  notice, collection and expiry times (a copy of the collection, not a new one), sealed
  under the subject's DEK bound to the new token, with a token of the field's kind in the
  caller's domain (deterministic under its key, random, or a fresh format-preserving token
  reserved in the field) and a blind index under its key. Shreds, field shreds, disposal and
  corrections reach it like any of the subject's values.

Each row is logged (action `translate`, the token asked, per-row outcome), and each
translated item gets a token_translations row naming the domain it came from and the one it
went to, in the same transaction; each subject translated goes in the issuance ledger. The
answer never names subjects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime

from vault.catalog import Catalog, FieldSpec, TokenKind
from vault.crypto import tokens as tk
from vault.crypto.aead import DataKey, row_aad
from vault.crypto.index import blind_index
from vault.errors import DecryptionFailed, InvalidInput, KeyUnavailable, NotFound, PdvError, PermissionDenied, Unavailable
from vault.policy import TRANSLATE
from vault.services.access import DENIED, AccessControl
from vault.services.common import (
    MAX_PURPOSE, MAX_REQUEST_ID, Caller, Limits, access_row, refusals_logged, require_batch, require_label,
)
from vault.services.detokenize import NOT_FOUND, NOT_PERMITTED, ROUNDS, DetokenizeItem, check_token_syntax
from vault.services.group_commit import GroupCommitter
from vault.services.index_keys import IndexKeys
from vault.services.keyring import KeyId, KeyRing
from vault.services.locators import SequentialTokens
from vault.storage import domains as db
from vault.storage.rows import VALUE_COLUMNS
from vault.storage.store import Tx

ACTION = "translate"
_AT = {name: i for i, name in enumerate(VALUE_COLUMNS)}
_SHAPED_TRIES = 64


@dataclass(frozen=True)
class Translated:
    token: str
    field: str = ""
    translated_token: str = dc_field(default="", repr=False)
    error: PdvError | None = None


@dataclass
class _Work:
    """What one translation writes, gathered inside the transaction (holds values: no repr)."""

    values: list[tuple] = dc_field(default_factory=list, repr=False)
    reserved: list[tuple[str, str]] = dc_field(default_factory=list)
    counts: dict[KeyId, int] = dc_field(default_factory=dict)
    log: list[tuple] = dc_field(default_factory=list)
    records: list[tuple] = dc_field(default_factory=list)
    holders: set[tuple[str, str, str]] = dc_field(default_factory=set)
    # (subject, field) -> [(value, token)] already in the caller's domain, or made by this call
    held: dict[tuple[str, str], list[tuple[str, str]]] = dc_field(default_factory=dict, repr=False)


class TranslateService:
    def __init__(
        self, committer: GroupCommitter, keyring: KeyRing, index_keys: IndexKeys, catalog: Catalog, limits: Limits,
        clock: Callable[[], datetime], access: AccessControl, tokens: SequentialTokens,
    ) -> None:
        self.committer, self.keyring, self.index_keys, self.tokens = committer, keyring, index_keys, tokens
        self.catalog, self.limits, self.clock, self.access = catalog, limits, clock, access

    def translate(
        self, caller: Caller, purpose: str, from_domain: str, items: list[DetokenizeItem]
    ) -> tuple[str, list[Translated]]:
        """The caller's domain, and per item the token of the same value in it (see the module doc).

        Raises:
            InvalidInput: missing or undeclared purpose, unknown `from_domain` or the caller's own,
                batch too large, a malformed token or unknown field (named by index).
            RateLimited: the principal's rate is exceeded; nothing was read.
            KeyUnavailable, StoreUnavailable: nothing is returned; the attempt is logged if the log can be.
        """
        now = self.clock()
        with refusals_logged(self.committer.run, now, caller, ACTION, purpose):
            require_label("request_id", caller.request_id, MAX_REQUEST_ID)
            require_label("purpose", purpose, MAX_PURPOSE)
        self.access.require_purpose(self.committer, caller, ACTION, purpose, now)
        policy = self.access.policy
        domain = policy.domain_of(caller.principal)
        with refusals_logged(self.committer.run, now, caller, ACTION, purpose):
            if from_domain not in policy.known_domains():
                raise InvalidInput("from_domain: not a token domain of the policy", "from_domain")
            if from_domain == domain:
                raise InvalidInput("from_domain: is the caller's own domain, whose tokens need no translation",
                                   "from_domain")
            require_batch("items", len(items), self.limits)
            for i, item in enumerate(items):
                check_token_syntax(self.catalog, i, item)
        self.access.limiter.spend(caller.principal, len(items))
        today = now.date()
        granted = frozenset(f for f in self.catalog.names if policy.allows(caller.principal, TRANSLATE, f, purpose, today))
        cleared = [it.field in granted if it.field else bool(granted) for it in items]
        tokens = sorted({it.token for it in items})
        domains = (from_domain, domain)
        for _ in range(ROUNDS):
            answer = self.committer.run(lambda tx: self._run(tx, caller, purpose, domains, granted, items, cleared, tokens, now))
            if isinstance(answer, list):
                return domain, answer
            try:
                self.keyring.data_keys(answer)  # unwrap what was missing, outside any transaction
            except KeyUnavailable:
                self._log_failure(caller, purpose, items, now)
                raise
        raise Unavailable("data keys keep expiring from the cache; retry")

    def _run(
        self, tx: Tx, caller: Caller, purpose: str, domains: tuple[str, str], granted: frozenset[str],
        items: list[DetokenizeItem], cleared: list[bool], tokens: list[str], now: datetime,
    ) -> list[Translated] | dict[KeyId, str]:
        """Inside the shared transaction: the results (written and logged), or the wrapped DEKs still needed."""
        from_domain, domain = domains
        located = self.tokens.locate(from_domain, tokens)
        found = _rows_per_item(items, db.rows_for_tokens(tx, tokens, from_domain, purpose, located))
        rows = [item_rows if ok else [] for item_rows, ok in zip(found, cleared)]
        verdicts = [[self._verdict(granted, purpose, r) for r in item_rows] for item_rows in rows]
        readable = [r for item_rows, vs in zip(rows, verdicts) for r, v in zip(item_rows, vs) if v == "ok"]
        targets = db.rows_of_subjects(tx, [(r.subject_id, r.field) for r in readable], domain)
        wanted = {(r.subject_id, r.key_version): r.wrapped for r in readable + targets}
        keys, missing = self.keyring.cached(wanted)
        if missing:
            return {key_id: wanted[key_id] for key_id in missing}
        work = _Work()
        for r in targets:
            opened = _open(keys, r)
            if opened is not None:
                work.held.setdefault((r.subject_id, r.field), []).append((opened, r.token))
        results = []
        for item, ok, item_rows, item_verdicts in zip(items, cleared, rows, verdicts):
            results.append(self._item(tx, caller, purpose, domains, keys, item, ok, item_rows, item_verdicts, work, now))
        tx.reserve_tokens(work.reserved)
        tx.add_values(work.values)
        tx.count_encryptions([(s, v, n) for (s, v), n in sorted(work.counts.items())])
        db.add_translations(tx, work.records)
        tx.log_access(work.log)
        tx.record_holders(work.holders, now)
        return results

    def _item(
        self, tx: Tx, caller: Caller, purpose: str, domains: tuple[str, str], keys: dict[KeyId, DataKey],
        item: DetokenizeItem, ok: bool, rows: list[db.DomainRow], verdicts: list[str], work: _Work, now: datetime,
    ) -> Translated:
        from_domain, domain = domains

        def logged(outcome: str, subject_id: str | None, field: str | None) -> None:
            work.log.append(access_row(now, caller, ACTION, purpose, outcome, subject_id, field, item.token))
            work.records.append((now, caller.request_id, caller.principal, subject_id, field, from_domain, domain, outcome))

        if not ok:
            logged(DENIED, None, item.field or None)
            return Translated(item.token, error=PermissionDenied(NOT_PERMITTED))
        answer: Translated | None = None
        for row, verdict in zip(rows, verdicts):
            value = _open(keys, row) if verdict == "ok" else None
            if value is None:
                logged(verdict if verdict != "ok" else "decryption_failed", row.subject_id, row.field)
                continue
            token = self._token_in_domain(tx, keys, row, value, domain, work)
            logged("ok", row.subject_id, row.field)
            work.holders.add((row.subject_id, domain, caller.principal))
            answer = answer or Translated(item.token, row.field, token)
        if not rows:
            logged("not_found", None, item.field or None)
        return answer or Translated(item.token, error=NotFound(NOT_FOUND))

    def _verdict(self, granted: frozenset[str], purpose: str, row: db.DomainRow) -> str:
        if row.field not in granted:
            return DENIED
        return self.access.refusal(purpose, row.purpose, row.opted_out) or "ok"

    def _token_in_domain(
        self, tx: Tx, keys: dict[KeyId, DataKey], row: db.DomainRow, value: str, domain: str, work: _Work
    ) -> str:
        """The subject's token of `value` in `domain`: the one it holds, or a new row's."""
        held = work.held.setdefault((row.subject_id, row.field), [])
        for held_value, token in held:
            if held_value == value:
                return token
        spec = self.catalog.field(row.field)
        if spec.token_kind is TokenKind.DETERMINISTIC:
            token = tk.deterministic_token(self.index_keys.token_key(spec.name, domain), value)
        elif spec.token_kind is TokenKind.FORMAT_PRESERVING:
            token = self._shaped_token(tx, spec, value, work)
        else:  # a random one in the token index: a copy is made inside the transaction, where no block can be reserved
            token = tk.random_token()
        data_key = keys[(row.subject_id, row.key_version)]
        copy = list(row.row)
        copy[_AT["token"]] = token
        copy[_AT["ciphertext"]] = data_key.seal(value.encode(), row_aad(row.subject_id, spec.name, token, row.key_version))
        copy[_AT["blind_index"]] = blind_index(self.index_keys.index_key(spec.name, domain), value) if spec.searchable else None
        copy[_AT["domain"]] = domain
        copy[_AT["locator"]] = copy[_AT["token_check"]] = None
        work.values.append(tuple(copy))
        work.counts[(row.subject_id, row.key_version)] = work.counts.get((row.subject_id, row.key_version), 0) + 1
        held.append((value, token))
        return token

    @staticmethod
    def _shaped_token(tx: Tx, spec: FieldSpec, value: str, work: _Work) -> str:
        """A format-preserving token not yet reserved in the field (in any domain) and unlike the value."""
        mine = {tok for f, tok in work.reserved if f == spec.name}
        for _ in range(_SHAPED_TRIES):
            token = tk.format_preserving_token(value)
            if token != value and token not in mine and not tx.taken_tokens(spec.name, [token]):
                work.reserved.append((spec.name, token))
                return token
        raise InvalidInput("no free format-preserving token left in a field; its token space is exhausted")

    def _log_failure(self, caller: Caller, purpose: str, items: list[DetokenizeItem], now: datetime) -> None:
        try:
            self.committer.run(lambda tx: tx.log_access([
                access_row(now, caller, ACTION, purpose, "unavailable", field=it.field or None, token=it.token)
                for it in items
            ]))
        except PdvError:
            pass  # the request fails either way; the operational log says why


def _open(keys: dict[KeyId, DataKey], row: db.DomainRow) -> str | None:
    try:
        return keys[(row.subject_id, row.key_version)].open(
            row.ciphertext, row_aad(row.subject_id, row.field, row.token, row.key_version)).decode()
    except DecryptionFailed:
        return None


def _rows_per_item(items: list[DetokenizeItem], rows: list[db.DomainRow]) -> list[list[db.DomainRow]]:
    by_token: dict[str, list[db.DomainRow]] = {}
    for row in rows:
        by_token.setdefault(row.token, []).append(row)
    return [[r for r in by_token.get(item.token, ()) if not item.field or r.field == item.field] for item in items]
