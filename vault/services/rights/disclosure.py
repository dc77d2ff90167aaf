"""Public disclosure: rewriting the tokens in records the city releases to what the public may see.

A city system answering an open-records request exports its records, which hold PDV tokens,
and sends each token (with its column's field, where the column is named for one) under the
disclosure's privacy request. Each item becomes one of:

- the stored value, where the catalog's `disclosure` option says the field is public;
- the field's mask of it, where the option says mask;
- ``[REDACTED: field]`` (``[REDACTED]`` when the item named no field) where it says redact
  (the default), and for every token that PDV does not know, that was shredded, or that the
  caller may not disclose (no `disclose` grant on its field, a collection purpose the
  disclosure purpose is not compatible with, its subject's opt-out). These are the same
  answer, so neither the caller nor the published file can tell a shredded or forbidden
  value from one that never existed: the label names only the field the caller gave;
- NOT_A_TOKEN, for text with no token syntax (that of the item's field, if named): it is
  not looked up and the caller keeps or refuses it (`pdv disclose`).

Who may: `disclose` granted for the purpose on at least one field, else the call is
PERMISSION_DENIED before any token is read (the answer depends on principal and purpose
only); values of fields it is not granted on are redacted. The case id must name an open
privacy request of kind disclosure, checked in the transaction that logs the items.

The log, in the same transaction as the answer (one group-committed unit, as Detokenize):
one entry per batch, action ``disclose_case``, with the case id in the token column; and one
per item and stored row, action ``disclose``, with the subject, field, token and outcome
(public, masked, redacted, not_found, not_a_token, or the refusal: denied, denied_purpose,
denied_consent). All carry the call's request id. An unknown text in a format-preserving
column may be a raw value typed where a token belongs, so a miss there is logged without
its text. Each batch is also linked to the privacy request (request_actions, action
disclosure, its counts), so `pdv requests show` lists it.

A redacted value is never decrypted; only public and masked ones need their subject's key,
unwrapped outside any transaction as Detokenize does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from vault.catalog import MASK, PUBLIC, Catalog, TokenKind, redaction
from vault.crypto import tokens as tk
from vault.crypto.aead import DataKey, row_aad
from vault.domain import FINAL_STATUSES
from vault.errors import AnswerTooLarge, DecryptionFailed, InvalidInput, KeyUnavailable, NotFound, PermissionDenied, \
    Unavailable, UnknownField
from vault.policy import DISCLOSE
from vault.services.access import DENIED, AccessControl
from vault.services.common import (
    MAX_PURPOSE, MAX_REQUEST_ID, Caller, Limits, access_row, refusals_logged, require_batch, require_label,
)
from vault.services.detokenize import ROUNDS, shaped_like
from vault.services.group_commit import GroupCommitter
from vault.services.keyring import KeyId, KeyRing
from vault.services.locators import SequentialTokens
from vault.services.rights.links import is_case_id, link
from vault.storage import requests as requests_db
from vault.storage.rows import ValueRow
from vault.storage.store import Tx

ACTION, CASE_ACTION, LINK_ACTION = "disclose", "disclose_case", "disclosure"
# Item outcomes (the log's and the answer's).
REDACTED, MASKED, PUBLIC_OUT, NOT_A_TOKEN, NOT_FOUND = "redacted", "masked", "public", "not_a_token", "not_found"
NO_OPEN_CASE, TOO_LARGE = "no_open_case", "too_large"
NOT_PERMITTED = "not permitted to disclose for this purpose: that needs a disclose grant for it"
NO_CASE = "case_id: no open disclosure request has this id (unknown, closed, or of another kind)"
FRAMING = 16  # protobuf framing of one DiscloseResult, at most


@dataclass(frozen=True)
class DiscloseItem:
    token: str
    field: str = ""


@dataclass(frozen=True)
class Disclosed:
    """What one item became: an outcome (public, masked, redacted, not_a_token) and its text."""

    outcome: str
    text: str = ""

    def __repr__(self) -> str:  # the text may be a public value: keep it out of reprs anyway
        return f"Disclosed({self.outcome!r})"


class _NoOpenCase:
    """The unit's answer when the case is not an open disclosure request (its refusal logged)."""


class DisclosureService:
    def __init__(
        self, committer: GroupCommitter, keyring: KeyRing, catalog: Catalog, limits: Limits,
        clock: Callable[[], datetime], access: AccessControl, tokens: SequentialTokens,
    ) -> None:
        self.committer, self.keyring, self.catalog, self.tokens = committer, keyring, catalog, tokens
        self.limits, self.clock, self.access = limits, clock, access

    def disclose(self, caller: Caller, purpose: str, case_id: str, items: list[DiscloseItem]) -> list[Disclosed]:
        """What the public may see in place of each item, in order (see the module doc).

        Raises:
            InvalidInput: missing or undeclared purpose, malformed case id or request id, empty
                or oversized batch, an item naming a field the catalog does not have.
            PermissionDenied: no `disclose` grant for the purpose on any field (logged).
            NotFound: the case id names no open disclosure request (logged).
            RateLimited, AnswerTooLarge: nothing was disclosed (the latter is logged).
            KeyUnavailable, StoreUnavailable: nothing is returned.
        """
        now = self.clock()
        with refusals_logged(self.committer.run, now, caller, CASE_ACTION, purpose):
            require_label("request_id", caller.request_id, MAX_REQUEST_ID)
            require_label("purpose", purpose, MAX_PURPOSE)
            if not is_case_id(case_id):
                raise InvalidInput("case_id: malformed (a privacy request's case id looks like req_ and 24 hex digits)",
                                   "case_id")
        self.access.require_purpose(self.committer, caller, CASE_ACTION, purpose, now)
        with refusals_logged(self.committer.run, now, caller, CASE_ACTION, purpose):
            require_batch("items", len(items), self.limits)
            shapes = [self._shape(i, item) for i, item in enumerate(items)]
        if not self.access.policy.may_disclose_any(caller.principal, purpose, now.date()):
            self.committer.run(lambda tx: tx.log_access([
                access_row(now, caller, CASE_ACTION, purpose, DENIED, token=case_id)]))
            raise PermissionDenied(NOT_PERMITTED)
        self.access.limiter.spend(caller.principal, len(items))
        tokens = sorted({item.token for item, shape in zip(items, shapes) if shape is not None})
        for _ in range(ROUNDS):
            answer = self.committer.run(lambda tx: self._resolve(tx, caller, purpose, case_id, items, shapes, tokens, now))
            if isinstance(answer, list):
                return answer
            if isinstance(answer, _NoOpenCase):
                raise NotFound(NO_CASE)
            if isinstance(answer, AnswerTooLarge):
                raise answer
            try:
                self.keyring.data_keys(answer)  # unwrap what was missing, outside any transaction
            except KeyUnavailable:
                self.committer.run(lambda tx: tx.log_access([
                    access_row(now, caller, CASE_ACTION, purpose, "unavailable", token=case_id)]))
                raise
        raise Unavailable("data keys keep expiring from the cache; retry")

    def _shape(self, index: int, item: DiscloseItem) -> TokenKind | None:
        """The kind of token the item's text could be (RANDOM standing for any opaque one), or
        None if it has no token syntax. Syntax only: nothing is read."""
        spec = None
        if item.field:
            try:
                spec = self.catalog.field(item.field)
            except UnknownField as exc:
                raise InvalidInput(f"items[{index}]: {exc}", f"items[{index}]") from None
        if tk.is_opaque_token(item.token):
            return TokenKind.RANDOM
        if spec is not None and spec.token_kind is TokenKind.FORMAT_PRESERVING and shaped_like(spec, item.token):
            return TokenKind.FORMAT_PRESERVING
        return None

    def _resolve(
        self, tx: Tx, caller: Caller, purpose: str, case_id: str, items: list[DiscloseItem],
        shapes: list[TokenKind | None], tokens: list[str], now: datetime,
    ) -> list[Disclosed] | dict[KeyId, str] | AnswerTooLarge | _NoOpenCase:
        """Inside the shared transaction: the results (logged and linked), the wrapped DEKs still
        needed, or a refusal (logged)."""
        case = requests_db.get_request(tx, case_id)
        if case is None or case.kind != "disclosure" or case.status in FINAL_STATUSES:
            tx.log_access([access_row(now, caller, CASE_ACTION, purpose, NO_OPEN_CASE, token=case_id)])
            return _NoOpenCase()
        by_token: dict[str, list[ValueRow]] = {}
        # A token is valid only in the token domain it was issued in: the caller's (vault/services/domains).
        domain = self.access.policy.domain_of(caller.principal)
        for row in tx.values_for_tokens(tokens, purpose, domain, self.tokens.locate(domain, tokens)):
            by_token.setdefault(row.token, []).append(row)
        found = [[r for r in by_token.get(it.token, ()) if not it.field or r.field == it.field] if shape else []
                 for it, shape in zip(items, shapes)]
        modes: dict[str, str] = {}  # field -> what the caller may disclose of it: asked once a call
        verdicts = [[self._verdict(modes, caller.principal, purpose, row, now) for row in rows] for rows in found]
        wanted = {(r.subject_id, r.key_version): r.wrapped
                  for rows, vs in zip(found, verdicts) for r, v in zip(rows, vs) if v in (PUBLIC_OUT, MASKED)}
        keys, missing = self.keyring.cached(wanted)
        if missing:
            return {key_id: wanted[key_id] for key_id in missing}
        results: list[Disclosed] = []
        log = [access_row(now, caller, CASE_ACTION, purpose, "ok", token=case_id)]
        for item, shape, rows, vs in zip(items, shapes, found, verdicts):
            if shape is None:
                results.append(Disclosed(NOT_A_TOKEN))
                log.append(access_row(now, caller, ACTION, purpose, NOT_A_TOKEN, None, item.field or None))
                continue
            if not rows:
                results.append(Disclosed(REDACTED, redaction(item.field)))
                # An unknown format-preserving "token" may be a raw value typed in its place.
                shown = item.token if shape is TokenKind.RANDOM else None
                log.append(access_row(now, caller, ACTION, purpose, NOT_FOUND, None, item.field or None, shown))
                continue
            result, outcomes = self._rewrite(item, rows, vs, keys)
            results.append(result)
            log += [access_row(now, caller, ACTION, purpose, outcome, row.subject_id, row.field, item.token)
                    for row, outcome in zip(rows, outcomes)]
        size = sum(len(r.text.encode()) + FRAMING for r in results)
        if size > self.limits.max_answer_bytes:
            # The batch's own entry first: nothing of this batch was disclosed.
            tx.log_access([row[:-1] + (TOO_LARGE,) if i == 0 or row[-1] in (PUBLIC_OUT, MASKED) else row
                           for i, row in enumerate(log)])
            return AnswerTooLarge(f"items: the answer would be about {size} bytes, over the "
                                  f"{self.limits.max_answer_bytes}-byte message limit; send fewer items per call")
        tx.log_access(log)
        counts = Counter(r.outcome for r in results)
        link(tx, case_id, now, caller, LINK_ACTION, [(None, "disclosed")],
             f"{caller.request_id}: {len(results)} items ({counts[PUBLIC_OUT]} public, {counts[MASKED]} masked, "
             f"{counts[REDACTED]} redacted, {counts[NOT_A_TOKEN]} not tokens)")
        return results

    def _verdict(self, modes: dict[str, str], principal: str, purpose: str, row: ValueRow, now: datetime) -> str:
        """PUBLIC_OUT, MASKED or REDACTED as the catalog says, if this row may be disclosed; else
        the refusal's log outcome (the caller sees a redaction either way)."""
        if row.field not in modes:
            if not self.access.policy.allows(principal, DISCLOSE, row.field, purpose, now.date()):
                modes[row.field] = DENIED
            else:
                mode = self.catalog.field(row.field).disclosure
                modes[row.field] = PUBLIC_OUT if mode == PUBLIC else MASKED if mode == MASK else REDACTED
        if modes[row.field] == DENIED:
            return DENIED
        return self.access.refusal(purpose, row.purpose, row.opted_out) or modes[row.field]

    def _rewrite(
        self, item: DiscloseItem, rows: list[ValueRow], verdicts: list[str], keys: dict[KeyId, DataKey],
    ) -> tuple[Disclosed, list[str]]:
        """One item's answer from the rows under its token (several subjects' rows for a shared
        deterministic token: the first that may be shown is), and each row's log outcome."""
        answer: Disclosed | None = None
        outcomes = []
        for row, verdict in zip(rows, verdicts):
            if verdict not in (PUBLIC_OUT, MASKED):
                outcomes.append(verdict)
                continue
            try:
                plain = keys[(row.subject_id, row.key_version)].open(
                    row.ciphertext, row_aad(row.subject_id, row.field, row.token, row.key_version)).decode()
            except DecryptionFailed:
                outcomes.append("decryption_failed")
                continue
            outcomes.append(verdict)
            if answer is None:
                answer = Disclosed(verdict, self.catalog.field(row.field).disclosed(plain))
        return answer or Disclosed(REDACTED, redaction(item.field)), outcomes
